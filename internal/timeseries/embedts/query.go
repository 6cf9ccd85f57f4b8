package embedts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// matchers translates a selector into library matchers.
func matchers(sel timeseries.Selector) ([]*labels.Matcher, error) {
	ms := make([]*labels.Matcher, 0, len(sel.Tags)+2)
	if sel.Measurement != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, measurementLabel, sel.Measurement))
	} else {
		// Every series has a measurement; this also keeps the library from
		// refusing a selector whose matchers all match the empty value.
		ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, measurementLabel, ".+"))
	}
	if sel.Field != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, fieldLabel, sel.Field))
	}
	for i, m := range sel.Tags {
		if m.Key == "" {
			return nil, fmt.Errorf("tag matcher %d: empty key: %w", i, timeseries.ErrInvalid)
		}
		var t labels.MatchType
		switch m.Op {
		case timeseries.MatchEqual:
			t = labels.MatchEqual
		case timeseries.MatchNotEqual:
			t = labels.MatchNotEqual
		case timeseries.MatchRegexp:
			t = labels.MatchRegexp
		case timeseries.MatchNotRegexp:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("tag matcher %q: unknown op %d: %w", m.Key, m.Op, timeseries.ErrInvalid)
		}
		lm, err := labels.NewMatcher(t, encodeTagKey(m.Key), m.Value)
		if err != nil {
			return nil, fmt.Errorf("tag matcher %q: %w: %v", m.Key, timeseries.ErrInvalid, err)
		}
		ms = append(ms, lm)
	}
	return ms, nil
}

func checkRange(r timeseries.Range) error {
	if r.Start >= r.End {
		return fmt.Errorf("range [%d, %d): start not before end: %w", r.Start, r.End, timeseries.ErrInvalid)
	}
	return nil
}

// each calls fn for every series matching sel that has at least one sample
// in r, with an iterator positioned on its first sample in r.
func (s *Store) each(ctx context.Context, op string, sel timeseries.Selector, r timeseries.Range,
	fn func(sr telemetry.Series, it chunkenc.Iterator, t int64, v float64) error,
) error {
	if err := s.acquire(op); err != nil {
		return err
	}
	defer s.release()
	if err := checkRange(r); err != nil {
		return fmt.Errorf("embedts: %s: %w", op, err)
	}
	ms, err := matchers(sel)
	if err != nil {
		return fmt.Errorf("embedts: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedts: %s: %w", op, err)
	}
	// The library's range is closed: [Start, End-1].
	q, err := s.db.Querier(r.Start, r.End-1)
	if err != nil {
		return fmt.Errorf("embedts: %s: %w: %v", op, timeseries.ErrUnavailable, err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, &storage.SelectHints{Start: r.Start, End: r.End - 1}, ms...)
	var it chunkenc.Iterator
	for ss.Next() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("embedts: %s: %w", op, err)
		}
		series := ss.At()
		it = series.Iterator(it)
		vt := it.Seek(r.Start)
		for ; vt != chunkenc.ValNone && vt != chunkenc.ValFloat; vt = it.Next() {
		}
		if vt == chunkenc.ValNone {
			if err := it.Err(); err != nil {
				return fmt.Errorf("embedts: %s: %w: %v", op, timeseries.ErrUnavailable, err)
			}
			continue
		}
		t, v := it.At()
		if t >= r.End {
			continue
		}
		if err := fn(seriesOf(series.Labels()), it, t, v); err != nil {
			return err
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("embedts: %s: %w: %v", op, timeseries.ErrUnavailable, err)
		}
	}
	if err := ss.Err(); err != nil {
		return fmt.Errorf("embedts: %s: %w: %v", op, timeseries.ErrUnavailable, err)
	}
	return nil
}

// forEach advances it through the samples before end, starting with (t, v),
// calling fn for every float sample.
func forEach(it chunkenc.Iterator, t int64, v float64, end int64, fn func(t int64, v float64)) {
	for {
		if t >= end {
			return
		}
		fn(t, v)
		vt := it.Next()
		for ; vt != chunkenc.ValNone && vt != chunkenc.ValFloat; vt = it.Next() {
		}
		if vt == chunkenc.ValNone {
			return
		}
		t, v = it.At()
	}
}

func sortByKey[T any](xs []T, series func(*T) telemetry.Series) {
	type keyed struct {
		key string
		x   T
	}
	tmp := make([]keyed, len(xs))
	for i := range xs {
		tmp[i] = keyed{series(&xs[i]).Key(), xs[i]}
	}
	slices.SortFunc(tmp, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range tmp {
		xs[i] = tmp[i].x
	}
}

// QueryRange returns the raw samples of every series matching sel in r.
func (s *Store) QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error) {
	var out []timeseries.SeriesSamples
	err := s.each(ctx, "query range", sel, r, func(sr telemetry.Series, it chunkenc.Iterator, t int64, v float64) error {
		ss := timeseries.SeriesSamples{Series: sr}
		forEach(it, t, v, r.End, func(t int64, v float64) {
			ss.Samples = append(ss.Samples, timeseries.Sample{Time: t, Value: v})
		})
		out = append(out, ss)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortByKey(out, func(x *timeseries.SeriesSamples) telemetry.Series { return x.Series })
	return out, nil
}

// ListSeries returns the series matching sel that have data in r.
func (s *Store) ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error) {
	var out []telemetry.Series
	err := s.each(ctx, "list series", sel, r, func(sr telemetry.Series, _ chunkenc.Iterator, _ int64, _ float64) error {
		out = append(out, sr)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortByKey(out, func(x *telemetry.Series) telemetry.Series { return *x })
	return out, nil
}

// floorDiv is a / b rounded towards negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// acc accumulates one bucket.
type acc struct {
	n                  int
	sum, lo, hi, f, la float64
}

func (a *acc) add(v float64) {
	if v != v {
		return
	}
	if a.n == 0 {
		a.lo, a.hi, a.f = v, v, v
	} else {
		a.lo, a.hi = min(a.lo, v), max(a.hi, v)
	}
	a.sum += v
	a.la = v
	a.n++
}

func (a *acc) value(agg timeseries.Aggregate) float64 {
	switch agg {
	case timeseries.AggAvg:
		return a.sum / float64(a.n)
	case timeseries.AggMin:
		return a.lo
	case timeseries.AggMax:
		return a.hi
	case timeseries.AggSum:
		return a.sum
	case timeseries.AggCount:
		return float64(a.n)
	case timeseries.AggFirst:
		return a.f
	case timeseries.AggLast:
		return a.la
	}
	return math.NaN()
}

// Downsample aggregates every series matching sel in r into buckets of step
// aligned to multiples of step since the epoch. NaN samples are skipped; a
// bucket with no other sample is omitted.
func (s *Store) Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error) {
	if step <= 0 || step%time.Millisecond != 0 {
		return nil, fmt.Errorf("embedts: downsample: step %v: not a positive number of milliseconds: %w", step, timeseries.ErrInvalid)
	}
	if len(aggs) == 0 {
		return nil, fmt.Errorf("embedts: downsample: no aggregate: %w", timeseries.ErrInvalid)
	}
	for _, a := range aggs {
		if _, err := timeseries.ParseAggregate(string(a)); err != nil {
			return nil, fmt.Errorf("embedts: downsample: %w", err)
		}
	}
	stepMs := step.Milliseconds()
	var out []timeseries.SeriesBuckets
	err := s.each(ctx, "downsample", sel, r, func(sr telemetry.Series, it chunkenc.Iterator, t int64, v float64) error {
		sb := timeseries.SeriesBuckets{Series: sr}
		var cur acc
		curStart := int64(math.MinInt64)
		flush := func() {
			if cur.n == 0 {
				return
			}
			vals := make([]float64, len(aggs))
			for i, a := range aggs {
				vals[i] = cur.value(a)
			}
			sb.Buckets = append(sb.Buckets, timeseries.Bucket{Start: curStart, Values: vals})
		}
		// Samples arrive in time order: a bucket ends when t passes curEnd.
		curEnd := int64(math.MinInt64)
		for {
			if t >= curEnd {
				flush()
				curStart = floorDiv(t, stepMs) * stepMs
				curEnd, cur = curStart+stepMs, acc{}
			}
			cur.add(v)
			vt := it.Next()
			for ; vt != chunkenc.ValNone && vt != chunkenc.ValFloat; vt = it.Next() {
			}
			if vt == chunkenc.ValNone {
				break
			}
			if t, v = it.At(); t >= r.End {
				break
			}
		}
		flush()
		if len(sb.Buckets) > 0 {
			out = append(out, sb)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortByKey(out, func(x *timeseries.SeriesBuckets) telemetry.Series { return x.Series })
	return out, nil
}
