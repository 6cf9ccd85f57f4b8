// Package timeseriestest is the conformance suite of timeseries.Repository:
// every backend runs RunConformanceTests against its real store (and
// RunBenchmarks beside it), so that all backends behave the same.
//
// A backend provides a Harness, which opens the store under test and
// declares what the backend supports; tests that need a capability the
// backend lacks are skipped, naming it. Each test writes into its own
// namespace (measurement names unique to the test and the run), so the
// suite can run against a shared server. DeleteBefore affects the whole
// store: give the suite a store in which deleting data older than a few
// hours is harmless (the embedded backend gets a fresh directory per test).
package timeseriestest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Capabilities declares what a backend supports. The suite reads them to
// pick timestamps and to skip tests a backend cannot pass by design.
type Capabilities struct {
	// OutOfOrderWindow is how far in the past (relative to Now) a point
	// may be; older points are rejected with ErrOutOfWindow. Zero means no
	// limit (tests of the limit are skipped). The suite writes data at most
	// 6 hours (or half the window) in the past.
	OutOfOrderWindow time.Duration
	// MaxFutureSkew is how far in the future a point may be; newer points
	// are rejected with ErrOutOfWindow. Zero means no limit.
	MaxFutureSkew time.Duration
	// Precision is the timestamp resolution; the suite requires one
	// millisecond (Vigil's unit) and skips exact-timestamp tests otherwise.
	Precision time.Duration
	// Now is the backend's clock; nil means time.Now.
	Now func() time.Time
}

// Harness gives the suite a store to test.
type Harness interface {
	// Open opens the store under test. Once the Repository returned by a
	// previous Open is closed, Open returns a Repository over the same
	// data (the reopen tests rely on it).
	Open(ctx context.Context) (timeseries.Repository, error)
	// Capabilities declares what the backend supports.
	Capabilities() Capabilities
}

// RunConformanceTests runs the suite. newHarness is called once per test,
// with that test; it registers its own cleanup with tb.Cleanup.
func RunConformanceTests(t *testing.T, newHarness func(tb testing.TB) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"RoundTrip", testRoundTrip},
		{"Selectors", testSelectors},
		{"IdempotentRewrite", testIdempotentRewrite},
		{"Conflict", testConflict},
		{"OutOfOrderWindow", testOutOfOrderWindow},
		{"FutureSkew", testFutureSkew},
		{"RangeBoundaries", testRangeBoundaries},
		{"DownsampleProperty", testDownsampleProperty},
		{"DeleteBefore", testDeleteBefore},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Reopen", testReopen},
		{"CancelledContext", testCancelledContext},
		{"NaNAndInf", testNaNAndInf},
		{"ListSeries", testListSeries},
		{"EmptyResults", testEmptyResults},
		{"InvalidArguments", testInvalidArguments},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newHarness(t))
			tc.fn(t, f)
		})
	}
}

// fixture is one test's store, namespace and clock.
type fixture struct {
	tb   testing.TB
	h    Harness
	caps Capabilities
	repo timeseries.Repository
	ns   string
	now  int64 // ms, when the fixture was made
	t0   int64 // ms, a minute boundary safely inside the accepted window
	span int64 // ms, data lies in [t0, t0+span), which is before now
}

func newFixture(tb testing.TB, h Harness) *fixture {
	tb.Helper()
	caps := h.Capabilities()
	if caps.Now == nil {
		caps.Now = time.Now
	}
	span := 6 * time.Hour
	if w := caps.OutOfOrderWindow; w > 0 && w/2 < span {
		span = w / 2
	}
	now := caps.Now()
	t0 := now.Add(-span).Truncate(time.Minute).Add(time.Minute)
	f := &fixture{
		tb:   tb,
		h:    h,
		caps: caps,
		ns:   namespace(tb),
		now:  now.UnixMilli(),
		t0:   t0.UnixMilli(),
		span: (span - 2*time.Minute).Milliseconds(),
	}
	f.repo = f.open()
	return f
}

// namespace returns a measurement-name prefix unique to the test and run.
func namespace(tb testing.TB) string {
	name := tb.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	b.WriteString("ct_")
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	fmt.Fprintf(&b, "_%08x", rand.Uint32())
	return b.String()
}

func (f *fixture) open() timeseries.Repository {
	f.tb.Helper()
	repo, err := f.h.Open(f.tb.Context())
	if err != nil {
		f.tb.Fatalf("open store: %v", err)
	}
	f.tb.Cleanup(func() {
		if err := repo.Close(); err != nil {
			f.tb.Errorf("close store: %v", err)
		}
	})
	return repo
}

// reopen closes the store and opens it again.
func (f *fixture) reopen() {
	f.tb.Helper()
	if err := f.repo.Close(); err != nil {
		f.tb.Fatalf("close store: %v", err)
	}
	f.repo = f.open()
}

func (f *fixture) series(suffix string, tags ...string) telemetry.Series {
	var ts telemetry.Tags
	for i := 0; i+1 < len(tags); i += 2 {
		ts = append(ts, telemetry.Tag{Key: tags[i], Value: tags[i+1]})
	}
	return telemetry.NewSeries(f.ns+suffix, ts, "value")
}

func (f *fixture) write(pts ...telemetry.Point) {
	f.tb.Helper()
	if err := f.repo.WritePoints(f.tb.Context(), pts); err != nil {
		f.tb.Fatalf("WritePoints(%d points): %v", len(pts), err)
	}
}

func (f *fixture) all() timeseries.Range { return timeseries.Range{Start: f.t0 - 1, End: f.now + 1} }

func (f *fixture) query(sel timeseries.Selector, r timeseries.Range) []timeseries.SeriesSamples {
	f.tb.Helper()
	got, err := f.repo.QueryRange(f.tb.Context(), sel, r)
	if err != nil {
		f.tb.Fatalf("QueryRange(%+v, %+v): %v", sel, r, err)
	}
	return got
}

func (f *fixture) needMillis(tb testing.TB) {
	tb.Helper()
	if p := f.caps.Precision; p != 0 && p != time.Millisecond {
		tb.Skipf("backend precision %v, test needs 1ms", p)
	}
}

func pt(s telemetry.Series, t int64, v float64) telemetry.Point {
	return telemetry.Point{Series: s, Time: t, Value: v}
}

// sameFloat is bit-exact equality, with every NaN equal to every NaN.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b)
}

var cmpOpts = []cmp.Option{cmp.Comparer(sameFloat), cmpopts.EquateEmpty()}

// expected builds the QueryRange result for the given points (no
// duplicates), sorted as the contract says.
func expected(pts []telemetry.Point) []timeseries.SeriesSamples {
	bySeries := map[string]*timeseries.SeriesSamples{}
	var keys []string
	for _, p := range pts {
		k := p.Series.Key()
		ss, ok := bySeries[k]
		if !ok {
			ss = &timeseries.SeriesSamples{Series: p.Series}
			bySeries[k] = ss
			keys = append(keys, k)
		}
		ss.Samples = append(ss.Samples, timeseries.Sample{Time: p.Time, Value: p.Value})
	}
	sortStrings(keys)
	out := make([]timeseries.SeriesSamples, 0, len(keys))
	for _, k := range keys {
		ss := bySeries[k]
		sortSamples(ss.Samples)
		out = append(out, *ss)
	}
	return out
}
