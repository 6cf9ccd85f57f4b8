package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// memRepo is a small in-memory timeseries.Repository: test scaffolding for
// the decorator, with the contract's idempotency and conflict rules.
type memRepo struct {
	mu     sync.Mutex
	series map[string]telemetry.Series
	data   map[string]map[int64]float64
	closed bool
}

func newMemRepo() *memRepo {
	return &memRepo{series: map[string]telemetry.Series{}, data: map[string]map[int64]float64{}}
}

func (m *memRepo) WritePoints(ctx context.Context, points []telemetry.Point) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return timeseries.ErrClosed
	}
	pe := &timeseries.PartialWriteError{}
	for i, p := range points {
		if p.Series.Measurement == "" || p.Series.Field == "" {
			pe.Failed = append(pe.Failed, timeseries.PointError{Index: i, Point: p, Err: timeseries.ErrInvalid})
			continue
		}
		k := p.Series.Key()
		if old, ok := m.data[k][p.Time]; ok && old != p.Value {
			pe.Failed = append(pe.Failed, timeseries.PointError{Index: i, Point: p, Err: timeseries.ErrConflict})
			continue
		}
		if m.data[k] == nil {
			m.data[k] = map[int64]float64{}
			m.series[k] = p.Series
		}
		m.data[k][p.Time] = p.Value
		pe.Written++
	}
	if len(pe.Failed) > 0 {
		return pe
	}
	return nil
}

func (m *memRepo) match(sel timeseries.Selector, s telemetry.Series) bool {
	if sel.Measurement != "" && sel.Measurement != s.Measurement || sel.Field != "" && sel.Field != s.Field {
		return false
	}
	for _, t := range sel.Tags {
		v, _ := s.Tags.Get(t.Key)
		if t.Op != timeseries.MatchEqual || v != t.Value {
			return false
		}
	}
	return true
}

func (m *memRepo) QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error) {
	if r.Start > r.End {
		return nil, fmt.Errorf("range %d..%d: %w", r.Start, r.End, timeseries.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []timeseries.SeriesSamples
	for k, s := range m.series {
		if !m.match(sel, s) {
			continue
		}
		ss := timeseries.SeriesSamples{Series: s}
		for ts, v := range m.data[k] {
			if ts >= r.Start && ts < r.End {
				ss.Samples = append(ss.Samples, timeseries.Sample{Time: ts, Value: v})
			}
		}
		if len(ss.Samples) > 0 {
			slices.SortFunc(ss.Samples, func(a, b timeseries.Sample) int { return int(a.Time - b.Time) })
			out = append(out, ss)
		}
	}
	slices.SortFunc(out, func(a, b timeseries.SeriesSamples) int {
		switch ak, bk := a.Series.Key(), b.Series.Key(); {
		case ak < bk:
			return -1
		case ak > bk:
			return 1
		}
		return 0
	})
	return out, nil
}

func (m *memRepo) Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error) {
	if step <= 0 {
		return nil, fmt.Errorf("step %v: %w", step, timeseries.ErrInvalid)
	}
	raw, err := m.QueryRange(ctx, sel, r)
	if err != nil {
		return nil, err
	}
	var out []timeseries.SeriesBuckets
	for _, s := range raw {
		sb := timeseries.SeriesBuckets{Series: s.Series}
		for _, smp := range s.Samples {
			start := smp.Time - smp.Time%step.Milliseconds()
			if n := len(sb.Buckets); n == 0 || sb.Buckets[n-1].Start != start {
				sb.Buckets = append(sb.Buckets, timeseries.Bucket{Start: start, Values: []float64{0}})
			}
			sb.Buckets[len(sb.Buckets)-1].Values[0]++ // count only
		}
		out = append(out, sb)
	}
	return out, nil
}

func (m *memRepo) ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error) {
	raw, err := m.QueryRange(ctx, sel, r)
	if err != nil {
		return nil, err
	}
	out := make([]telemetry.Series, len(raw))
	for i, s := range raw {
		out[i] = s.Series
	}
	return out, nil
}

func (m *memRepo) DeleteBefore(ctx context.Context, cutoff int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.data {
		for ts := range d {
			if ts < cutoff {
				delete(d, ts)
			}
		}
	}
	return nil
}

func (m *memRepo) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// lossy wraps a Repository with an unreliable link: the next failures calls
// fail with ErrUnavailable; a failing WritePoints first delivers the first
// half of its batch (the connection drops mid-batch).
type lossy struct {
	timeseries.Repository
	mu       sync.Mutex
	failures int
	calls    int
}

func (l *lossy) fail() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.failures > 0 {
		l.failures--
		return true
	}
	return false
}

func (l *lossy) setFailures(n int) {
	l.mu.Lock()
	l.failures, l.calls = n, 0
	l.mu.Unlock()
}

func (l *lossy) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

var errLink = fmt.Errorf("connection reset: %w", timeseries.ErrUnavailable)

func (l *lossy) WritePoints(ctx context.Context, points []telemetry.Point) error {
	if l.fail() {
		_ = l.Repository.WritePoints(ctx, points[:len(points)/2])
		return errLink
	}
	return l.Repository.WritePoints(ctx, points)
}

func (l *lossy) QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error) {
	if l.fail() {
		return nil, errLink
	}
	return l.Repository.QueryRange(ctx, sel, r)
}

func (l *lossy) Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error) {
	if l.fail() {
		return nil, errLink
	}
	return l.Repository.Downsample(ctx, sel, r, step, aggs)
}

func (l *lossy) ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error) {
	if l.fail() {
		return nil, errLink
	}
	return l.Repository.ListSeries(ctx, sel, r)
}

func (l *lossy) DeleteBefore(ctx context.Context, cutoff int64) error {
	if l.fail() {
		return errLink
	}
	return l.Repository.DeleteBefore(ctx, cutoff)
}

func points(n int) []telemetry.Point {
	s := telemetry.NewSeries("cpu", telemetry.Tags{{Key: "device", Value: "d1"}}, "usage")
	out := make([]telemetry.Point, n)
	for i := range out {
		out[i] = telemetry.Point{Series: s, Time: int64(1000 * (i + 1)), Value: float64(i)}
	}
	return out
}

func newDecorated(t *testing.T, cfg resilience.Config) (timeseries.Repository, *lossy, *memRepo) {
	t.Helper()
	mem := newMemRepo()
	l := &lossy{Repository: mem}
	p, _ := newPolicy(t, cfg, nil)
	repo := resilience.TimeSeries(l, p)
	t.Cleanup(func() { _ = repo.Close() })
	return repo, l, mem
}

func TestTimeSeriesWriteRetriesWholeBatchUnavailable(t *testing.T) {
	repo, l, mem := newDecorated(t, resilience.Config{MaxAttempts: 4, FailureThreshold: 100})
	ctx := t.Context()
	pts := points(10)
	l.setFailures(2) // two dropped connections, each after half the batch
	if err := repo.WritePoints(ctx, pts); err != nil {
		t.Fatalf("WritePoints with 2 transient failures: %v", err)
	}
	if got, want := l.callCount(), 3; got != want {
		t.Errorf("WritePoints calls: got %d, want %d", got, want)
	}
	// The half batch written before each failure was rewritten, harmlessly.
	got, err := mem.QueryRange(ctx, timeseries.Selector{}, timeseries.Range{Start: 0, End: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != len(pts) {
		t.Fatalf("stored after retried write: got %v, want one series with %d samples", got, len(pts))
	}
	for i, s := range got[0].Samples {
		if s.Time != pts[i].Time || s.Value != pts[i].Value {
			t.Errorf("sample %d: got %+v, want time %d value %v", i, s, pts[i].Time, pts[i].Value)
		}
	}
}

func TestTimeSeriesWriteDoesNotRetryRejectedPoints(t *testing.T) {
	repo, l, _ := newDecorated(t, resilience.Config{MaxAttempts: 4, FailureThreshold: 100})
	ctx := t.Context()
	if err := repo.WritePoints(ctx, points(3)); err != nil {
		t.Fatal(err)
	}
	batch := points(4)
	batch[0].Value = 99              // conflicts with the stored value
	batch[2].Series.Measurement = "" // invalid
	l.setFailures(0)
	err := repo.WritePoints(ctx, batch)
	var pe *timeseries.PartialWriteError
	if !errors.As(err, &pe) {
		t.Fatalf("WritePoints with rejected points: got %v, want *PartialWriteError", err)
	}
	if got, want := []int{pe.Failed[0].Index, pe.Failed[1].Index}, []int{0, 2}; !slices.Equal(got, want) {
		t.Errorf("rejected indices: got %v, want %v", got, want)
	}
	if !errors.Is(err, timeseries.ErrConflict) || !errors.Is(err, timeseries.ErrInvalid) {
		t.Errorf("WritePoints error %v: want it to match ErrConflict and ErrInvalid", err)
	}
	if got := l.callCount(); got != 1 {
		t.Errorf("WritePoints calls for a partial write: got %d, want 1", got)
	}
}

func TestTimeSeriesReadsRetry(t *testing.T) {
	repo, l, _ := newDecorated(t, resilience.Config{MaxAttempts: 3, FailureThreshold: 100})
	ctx := t.Context()
	if err := repo.WritePoints(ctx, points(5)); err != nil {
		t.Fatal(err)
	}
	all := timeseries.Range{Start: 0, End: 1 << 40}
	sel := timeseries.Selector{Measurement: "cpu"}
	tests := []struct {
		name      string
		failures  int
		call      func() (int, error) // returns the number of results
		wantN     int
		wantCalls int
		wantIs    error
	}{
		{"QueryRange", 2, func() (int, error) { r, err := repo.QueryRange(ctx, sel, all); return len(r), err }, 1, 3, nil},
		{"Downsample", 1, func() (int, error) {
			r, err := repo.Downsample(ctx, sel, all, time.Second, []timeseries.Aggregate{timeseries.AggCount})
			return len(r), err
		}, 1, 2, nil},
		{"ListSeries", 1, func() (int, error) { r, err := repo.ListSeries(ctx, sel, all); return len(r), err }, 1, 2, nil},
		{"DeleteBefore", 1, func() (int, error) { return 0, repo.DeleteBefore(ctx, 0) }, 0, 2, nil},
		{"QueryRange exhausted", 5, func() (int, error) { r, err := repo.QueryRange(ctx, sel, all); return len(r), err }, 0, 3, timeseries.ErrUnavailable},
		{"QueryRange bad input", 0, func() (int, error) {
			r, err := repo.QueryRange(ctx, sel, timeseries.Range{Start: 10, End: 1})
			return len(r), err
		}, 0, 1, timeseries.ErrInvalid},
		{"Downsample bad step", 0, func() (int, error) {
			r, err := repo.Downsample(ctx, sel, all, 0, nil)
			return len(r), err
		}, 0, 1, timeseries.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l.setFailures(tc.failures)
			n, err := tc.call()
			if tc.wantIs == nil && err != nil || tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("got error %v, want %v", err, tc.wantIs)
			}
			if n != tc.wantN {
				t.Errorf("results: got %d, want %d", n, tc.wantN)
			}
			if got := l.callCount(); got != tc.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestTimeSeriesOpenBreakerIsUnavailable(t *testing.T) {
	repo, l, _ := newDecorated(t, resilience.Config{MaxAttempts: 1, FailureThreshold: 2})
	ctx := t.Context()
	l.setFailures(2)
	for range 2 {
		if err := repo.WritePoints(ctx, points(2)); !errors.Is(err, timeseries.ErrUnavailable) {
			t.Fatalf("WritePoints on a failing link: got %v, want ErrUnavailable", err)
		}
	}
	l.setFailures(0)
	_, err := repo.QueryRange(ctx, timeseries.Selector{}, timeseries.Range{Start: 0, End: 10})
	if !errors.Is(err, resilience.ErrCircuitOpen) || !errors.Is(err, timeseries.ErrUnavailable) {
		t.Errorf("QueryRange with an open breaker: got %v, want an error matching ErrCircuitOpen and ErrUnavailable", err)
	}
	if got := l.callCount(); got != 0 {
		t.Errorf("calls reaching the store with an open breaker: got %d, want 0", got)
	}
}

func TestTimeSeriesClosePassesThrough(t *testing.T) {
	repo, _, mem := newDecorated(t, resilience.Config{})
	if err := repo.Close(); err != nil {
		t.Fatal(err)
	}
	err := repo.WritePoints(t.Context(), points(1))
	if !errors.Is(err, timeseries.ErrClosed) {
		t.Errorf("WritePoints after Close: got %v, want ErrClosed", err)
	}
	if diff := cmp.Diff(true, mem.closed); diff != "" {
		t.Errorf("inner store closed (-want +got):\n%s", diff)
	}
}

// partialUnavailable rejects the first point of each batch as unavailable
// (a backend that lost one shard) and writes the rest.
type partialUnavailable struct {
	*memRepo
	calls int
}

func (p *partialUnavailable) WritePoints(ctx context.Context, points []telemetry.Point) error {
	p.calls++
	if err := p.memRepo.WritePoints(ctx, points[1:]); err != nil {
		return err
	}
	return &timeseries.PartialWriteError{
		Written: len(points) - 1,
		Failed:  []timeseries.PointError{{Index: 0, Point: points[0], Err: timeseries.ErrUnavailable}},
	}
}

func TestTimeSeriesWriteDoesNotRetryPartialUnavailable(t *testing.T) {
	inner := &partialUnavailable{memRepo: newMemRepo()}
	p, _ := newPolicy(t, resilience.Config{MaxAttempts: 4, FailureThreshold: 100}, nil)
	repo := resilience.TimeSeries(inner, p)
	err := repo.WritePoints(t.Context(), points(3))
	var pe *timeseries.PartialWriteError
	if !errors.As(err, &pe) || !errors.Is(err, timeseries.ErrUnavailable) {
		t.Fatalf("WritePoints: got %v, want a *PartialWriteError matching ErrUnavailable", err)
	}
	if inner.calls != 1 {
		t.Errorf("WritePoints calls for a partial write with an unavailable point: got %d, want 1 (only whole-batch failures are retried)", inner.calls)
	}
}

func BenchmarkTimeSeriesQueryRange(b *testing.B) {
	mem := newMemRepo()
	p, err := resilience.NewPolicy(resilience.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if err := mem.WritePoints(ctx, points(10)); err != nil {
		b.Fatal(err)
	}
	sel := timeseries.Selector{Measurement: "cpu"}
	r := timeseries.Range{Start: 0, End: 1 << 40}
	for _, tc := range []struct {
		name string
		repo timeseries.Repository
	}{{"repo=plain", mem}, {"repo=decorated", resilience.TimeSeries(mem, p)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.repo.QueryRange(ctx, sel, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
