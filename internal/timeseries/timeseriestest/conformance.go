package timeseriestest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

func sortStrings(s []string) { slices.Sort(s) }

func sortSamples(s []timeseries.Sample) {
	slices.SortFunc(s, func(a, b timeseries.Sample) int { return cmpInt(a.Time, b.Time) })
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// partial asserts that err is a *PartialWriteError whose failures are
// exactly the given indexes, each of the given kind.
func partial(t *testing.T, err error, kind error, idx ...int) {
	t.Helper()
	var pe *timeseries.PartialWriteError
	if !errors.As(err, &pe) {
		t.Fatalf("WritePoints error = %v, want *PartialWriteError", err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, kind)
	}
	var got []int
	for _, f := range pe.Failed {
		got = append(got, f.Index)
		if !errors.Is(f.Err, kind) {
			t.Errorf("failed point %d: error %v, want kind %v", f.Index, f.Err, kind)
		}
	}
	if diff := cmp.Diff(idx, got); diff != "" {
		t.Errorf("failed point indexes (-want +got):\n%s", diff)
	}
}

func testRoundTrip(t *testing.T, f *fixture) {
	f.needMillis(t)
	values := []float64{0, 1, -1, 0.1 + 0.2, math.Pi, 1e-300, -1e300, math.SmallestNonzeroFloat64,
		math.MaxFloat64, math.Nextafter(1, 2), 21.47, -273.15, 123456789.125, math.Copysign(0, -1)}
	rng := rand.New(rand.NewPCG(1, 2))
	var pts []telemetry.Point
	const nSeries, nPoints = 40, 60
	for s := range nSeries {
		sr := f.series("", telemetry.DeviceTag, fmt.Sprintf("dev-%03d", s), "room", fmt.Sprintf("r%d", s%3))
		for i := range nPoints {
			v := values[(s+i)%len(values)]
			if i%4 == 3 {
				v = rng.NormFloat64() * 1000
			}
			pts = append(pts, pt(sr, f.t0+int64(i)*1000+int64(s), v))
		}
	}
	f.write(pts...)
	got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
	if diff := cmp.Diff(expected(pts), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after writing %d points (-want +got):\n%s", len(pts), diff)
	}
	// Fields are separate series of the same measurement.
	other := telemetry.NewSeries(f.ns, telemetry.Tags{{Key: telemetry.DeviceTag, Value: "dev-000"}, {Key: "room", Value: "r0"}}, "humidity")
	f.write(pt(other, f.t0, 55.5))
	got = f.query(timeseries.Selector{Measurement: f.ns, Field: "humidity"}, f.all())
	if diff := cmp.Diff(expected([]telemetry.Point{pt(other, f.t0, 55.5)}), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange(field humidity) (-want +got):\n%s", diff)
	}
}

func testSelectors(t *testing.T, f *fixture) {
	a := f.series("_a", "device", "d1", "room", "kitchen")
	b := f.series("_a", "device", "d2", "room", "hall")
	c := f.series("_a", "device", "d3") // no room
	d := f.series("_b", "device", "d1", "room", "kitchen")
	e := telemetry.NewSeries(f.ns+"_a", telemetry.Tags{{Key: "device", Value: "d1"}, {Key: "room", Value: "kitchen"}}, "humidity")
	u := f.series("_a", "device", "d4", "_under", "x") // tag key with a leading underscore
	all := []telemetry.Series{a, b, c, d, e, u}
	var pts []telemetry.Point
	for i, s := range all {
		pts = append(pts, pt(s, f.t0+int64(i), float64(i)))
	}
	f.write(pts...)
	ma := f.ns + "_a"
	tests := []struct {
		name string
		sel  timeseries.Selector
		want []telemetry.Series
	}{
		{"measurement", timeseries.Selector{Measurement: ma}, []telemetry.Series{a, b, c, e, u}},
		{"measurement and field", timeseries.Selector{Measurement: ma, Field: "value"}, []telemetry.Series{a, b, c, u}},
		{"field only within namespace", timeseries.Selector{Field: "humidity", Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchEqual, Value: "d1"}}}, nil}, // filtered below
		{"equal", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "room", Op: timeseries.MatchEqual, Value: "kitchen"}}}, []telemetry.Series{a, e}},
		{"not equal", timeseries.Selector{Measurement: ma, Field: "value", Tags: []timeseries.Matcher{{Key: "room", Op: timeseries.MatchNotEqual, Value: "kitchen"}}}, []telemetry.Series{b, c, u}},
		{"missing tag equals empty", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "room", Op: timeseries.MatchEqual, Value: ""}}}, []telemetry.Series{c, u}},
		{"regexp full match", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchRegexp, Value: "d[12]"}}}, []telemetry.Series{a, b, e}},
		{"regexp is anchored", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchRegexp, Value: "d"}}}, nil},
		{"not regexp", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchNotRegexp, Value: "d[12]"}}}, []telemetry.Series{c, u}},
		{"two matchers", timeseries.Selector{Measurement: ma, Field: "value", Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchRegexp, Value: "d.*"}, {Key: "room", Op: timeseries.MatchNotEqual, Value: ""}}}, []telemetry.Series{a, b}},
		{"underscore tag", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "_under", Op: timeseries.MatchEqual, Value: "x"}}}, []telemetry.Series{u}},
		{"no match", timeseries.Selector{Measurement: ma, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchEqual, Value: "nope"}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := f.query(tc.sel, f.all())
			var gotSeries []telemetry.Series
			for _, ss := range got {
				if strings.HasPrefix(ss.Series.Measurement, f.ns) {
					gotSeries = append(gotSeries, ss.Series)
				}
			}
			want := tc.want
			if tc.name == "field only within namespace" {
				want = []telemetry.Series{e}
			}
			wantPts := []telemetry.Point{}
			for _, s := range want {
				wantPts = append(wantPts, pt(s, 0, 0))
			}
			var wantSeries []telemetry.Series
			for _, ss := range expected(wantPts) {
				wantSeries = append(wantSeries, ss.Series)
			}
			if diff := cmp.Diff(wantSeries, gotSeries, cmpOpts...); diff != "" {
				t.Errorf("QueryRange(%+v) series (-want +got):\n%s", tc.sel, diff)
			}
			ls, err := f.repo.ListSeries(t.Context(), tc.sel, f.all())
			if err != nil {
				t.Fatalf("ListSeries(%+v): %v", tc.sel, err)
			}
			ls = slices.DeleteFunc(ls, func(s telemetry.Series) bool { return !strings.HasPrefix(s.Measurement, f.ns) })
			if diff := cmp.Diff(wantSeries, ls, cmpOpts...); diff != "" {
				t.Errorf("ListSeries(%+v) (-want +got):\n%s", tc.sel, diff)
			}
		})
	}
}

func testIdempotentRewrite(t *testing.T, f *fixture) {
	f.needMillis(t)
	s := f.series("", "device", "d1")
	var pts []telemetry.Point
	for i := range 20 {
		pts = append(pts, pt(s, f.t0+int64(i)*1000, float64(i)/10))
	}
	f.write(pts...)
	f.write(pts...)                  // whole batch again
	f.write(pts[5], pts[0], pts[19]) // out of order, already stored
	f.write(pts[3], pts[3])          // twice in one batch
	f.write(pt(s, f.t0+20_000, 2), pt(s, f.t0+20_000, 2))
	pts = append(pts, pt(s, f.t0+20_000, 2))
	f.reopen()
	f.write(pts[7], pts[20]) // after reopen
	got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
	if diff := cmp.Diff(expected(pts), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after identical rewrites (-want +got):\n%s", diff)
	}
}

func testConflict(t *testing.T, f *fixture) {
	f.needMillis(t)
	s := f.series("", "device", "d1")
	other := f.series("", "device", "d2")
	var want []telemetry.Point
	for i := range 10 {
		want = append(want, pt(s, f.t0+int64(i)*1000, float64(i)))
	}
	f.write(want...)
	check := func(t *testing.T, when string) {
		t.Helper()
		got := f.query(timeseries.Selector{Measurement: f.ns, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchEqual, Value: "d1"}}}, f.all())
		if diff := cmp.Diff(expected(want), got, cmpOpts...); diff != "" {
			t.Errorf("QueryRange %s (-want +got):\n%s", when, diff)
		}
	}
	tests := []struct {
		name string
		pts  []telemetry.Point
		bad  []int
	}{
		{"newest timestamp", []telemetry.Point{pt(s, f.t0+9000, -9)}, []int{0}},
		{"older timestamp", []telemetry.Point{pt(s, f.t0+3000, -3)}, []int{0}},
		{"oldest timestamp", []telemetry.Point{pt(s, f.t0, 0.5)}, []int{0}},
		{"mixed batch", []telemetry.Point{pt(other, f.t0, 1), pt(s, f.t0+5000, 55), pt(other, f.t0+1000, 2)}, []int{1}},
		{"same batch, new timestamp", []telemetry.Point{pt(s, f.t0+20_000, 20), pt(s, f.t0+20_000, 21)}, []int{1}},
		{"same batch, new older timestamp", []telemetry.Point{pt(s, f.t0+500, 0.5), pt(s, f.t0+600, 0.6), pt(s, f.t0+500, 0.7)}, []int{2}},
		{"NaN over a number", []telemetry.Point{pt(s, f.t0+4000, math.NaN())}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.repo.WritePoints(t.Context(), tc.pts)
			partial(t, err, timeseries.ErrConflict, tc.bad...)
			for i, p := range tc.pts {
				if !slices.Contains(tc.bad, i) && p.Series.Key() == s.Key() {
					want = append(want, p)
				}
			}
			check(t, "after conflict")
		})
	}
	t.Run("after reopen", func(t *testing.T) {
		f.reopen()
		err := f.repo.WritePoints(t.Context(), []telemetry.Point{pt(s, f.t0+2000, 99), pt(s, f.t0+20_000, 99)})
		partial(t, err, timeseries.ErrConflict, 0, 1)
		check(t, "after reopen and conflict")
	})
}

func testOutOfOrderWindow(t *testing.T, f *fixture) {
	f.needMillis(t)
	s := f.series("", "device", "d1")
	newest := f.now - int64(time.Minute/time.Millisecond)
	f.write(pt(s, newest, 1))
	inside := []telemetry.Point{pt(s, f.t0+1000, 2), pt(s, f.t0, 3), pt(s, newest-1, 4)}
	f.write(inside...)
	want := append([]telemetry.Point{pt(s, newest, 1)}, inside...)
	if w := f.caps.OutOfOrderWindow; w > 0 {
		tooOld := f.caps.Now().Add(-w - 5*time.Minute).UnixMilli()
		batch := []telemetry.Point{pt(s, newest-2, 5), pt(s, tooOld, 6), pt(s, newest-3, 7), pt(s, tooOld-1000, 8)}
		err := f.repo.WritePoints(t.Context(), batch)
		partial(t, err, timeseries.ErrOutOfWindow, 1, 3)
		var pe *timeseries.PartialWriteError
		if errors.As(err, &pe) && pe.Written != 2 {
			t.Errorf("PartialWriteError.Written = %d, want 2", pe.Written)
		}
		want = append(want, batch[0], batch[2])
	}
	got := f.query(timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: math.MinInt64 / 2, End: f.now + 1})
	if diff := cmp.Diff(expected(want), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after out-of-order writes (-want +got):\n%s", diff)
	}
	if f.caps.OutOfOrderWindow == 0 {
		t.Skip("backend declares no out-of-order window: nothing is too old")
	}
}

func testFutureSkew(t *testing.T, f *fixture) {
	skew := f.caps.MaxFutureSkew
	if skew == 0 {
		t.Skip("backend declares no maximum future skew")
	}
	s := f.series("", "device", "d1")
	now := f.caps.Now()
	ok := now.Add(skew / 2).UnixMilli()
	far := now.Add(skew + 5*time.Minute).UnixMilli()
	batch := []telemetry.Point{pt(s, far, 1), pt(s, ok, 2), pt(s, now.Add(365*24*time.Hour).UnixMilli(), 3)}
	err := f.repo.WritePoints(t.Context(), batch)
	partial(t, err, timeseries.ErrOutOfWindow, 0, 2)
	got := f.query(timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: f.t0, End: math.MaxInt64 / 2})
	if diff := cmp.Diff(expected(batch[1:2]), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after future writes (-want +got):\n%s", diff)
	}
}

func testRangeBoundaries(t *testing.T, f *fixture) {
	f.needMillis(t)
	s := f.series("", "device", "d1")
	var pts []telemetry.Point
	for i := range 10 {
		pts = append(pts, pt(s, f.t0+int64(i), float64(i)))
	}
	f.write(pts...)
	tests := []struct {
		name       string
		start, end int64 // offsets from t0
		want       []telemetry.Point
	}{
		{"start inclusive end exclusive", 2, 5, pts[2:5]},
		{"single millisecond", 7, 8, pts[7:8]},
		{"end on first sample", -10, 0, nil},
		{"start after last", 10, 20, nil},
		{"start on last", 9, 20, pts[9:]},
		{"all", -1, 10, pts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := timeseries.Range{Start: f.t0 + tc.start, End: f.t0 + tc.end}
			got := f.query(timeseries.Selector{Measurement: f.ns}, r)
			if diff := cmp.Diff(expected(tc.want), got, cmpOpts...); diff != "" {
				t.Errorf("QueryRange(%+v) (-want +got):\n%s", r, diff)
			}
			ds, err := f.repo.Downsample(t.Context(), timeseries.Selector{Measurement: f.ns}, r, time.Millisecond, []timeseries.Aggregate{timeseries.AggCount})
			if err != nil {
				t.Fatalf("Downsample(%+v): %v", r, err)
			}
			n := 0
			for _, sb := range ds {
				for _, b := range sb.Buckets {
					n += int(b.Values[0])
				}
			}
			if n != len(tc.want) {
				t.Errorf("Downsample(%+v, 1ms, count) counted %d samples, want %d", r, n, len(tc.want))
			}
			ls, err := f.repo.ListSeries(t.Context(), timeseries.Selector{Measurement: f.ns}, r)
			if err != nil {
				t.Fatalf("ListSeries(%+v): %v", r, err)
			}
			if got, want := len(ls), min(len(tc.want), 1); got != want {
				t.Errorf("ListSeries(%+v) returned %d series, want %d", r, got, want)
			}
		})
	}
}

// naiveDownsample is the reference implementation of Downsample.
func naiveDownsample(samples []timeseries.Sample, r timeseries.Range, step int64, aggs []timeseries.Aggregate) []timeseries.Bucket {
	groups := map[int64][]float64{}
	var starts []int64
	for _, s := range samples {
		if s.Time < r.Start || s.Time >= r.End || math.IsNaN(s.Value) {
			continue
		}
		b := s.Time - ((s.Time%step)+step)%step
		if _, ok := groups[b]; !ok {
			starts = append(starts, b)
		}
		groups[b] = append(groups[b], s.Value)
	}
	slices.Sort(starts)
	var out []timeseries.Bucket
	for _, b := range starts {
		vs := groups[b]
		var vals []float64
		for _, a := range aggs {
			var v float64
			switch a {
			case timeseries.AggCount:
				v = float64(len(vs))
			case timeseries.AggSum, timeseries.AggAvg:
				for _, x := range vs {
					v += x
				}
				if a == timeseries.AggAvg {
					v /= float64(len(vs))
				}
			case timeseries.AggMin:
				v = slices.Min(vs)
			case timeseries.AggMax:
				v = slices.Max(vs)
			case timeseries.AggFirst:
				v = vs[0]
			case timeseries.AggLast:
				v = vs[len(vs)-1]
			}
			vals = append(vals, v)
		}
		out = append(out, timeseries.Bucket{Start: b, Values: vals})
	}
	return out
}

// closeEnough allows rounding differences in sums (backends may add in
// another order); everything else must be exact.
func closeEnough(a, b float64) bool {
	if sameFloat(a, b) || a == b {
		return true
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) || math.IsNaN(a) || math.IsNaN(b) {
		return false
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// diffBuckets compares downsampled results (cmp.Diff is too slow for
// thousands of buckets) and reports the first differences.
func diffBuckets(t *testing.T, call string, want, got []timeseries.SeriesBuckets) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s returned %d series, want %d", call, len(got), len(want))
		return
	}
	errs := 0
	for i := range want {
		w, g := want[i], got[i]
		if w.Series.Key() != g.Series.Key() {
			t.Errorf("%s series %d = %s, want %s", call, i, g.Series.Key(), w.Series.Key())
			return
		}
		if len(w.Buckets) != len(g.Buckets) {
			t.Errorf("%s series %s: %d buckets, want %d", call, w.Series.Key(), len(g.Buckets), len(w.Buckets))
			continue
		}
		for j := range w.Buckets {
			wb, gb := w.Buckets[j], g.Buckets[j]
			ok := wb.Start == gb.Start && len(wb.Values) == len(gb.Values)
			for k := 0; ok && k < len(wb.Values); k++ {
				ok = closeEnough(wb.Values[k], gb.Values[k])
			}
			if !ok {
				t.Errorf("%s series %s bucket %d = %+v, want %+v", call, w.Series.Key(), j, gb, wb)
				if errs++; errs >= 5 {
					return
				}
			}
		}
	}
}

func testDownsampleProperty(t *testing.T, f *fixture) {
	f.needMillis(t)
	rng := rand.New(rand.NewPCG(42, 7))
	series := []telemetry.Series{f.series("", "device", "a"), f.series("", "device", "b"), f.series("", "device", "c")}
	raw := map[string][]timeseries.Sample{}
	var pts []telemetry.Point
	for si, s := range series {
		used := map[int64]bool{}
		n := 1500 + 500*si
		for range n {
			ts := f.t0 + rng.Int64N(f.span)
			if used[ts] {
				continue
			}
			used[ts] = true
			v := math.Round(rng.NormFloat64()*10000) / 100
			if rng.IntN(50) == 0 {
				v = math.NaN()
			}
			pts = append(pts, pt(s, ts, v))
			raw[s.Key()] = append(raw[s.Key()], timeseries.Sample{Time: ts, Value: v})
		}
	}
	rng.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
	for i := 0; i < len(pts); i += 1000 {
		f.write(pts[i:min(i+1000, len(pts))]...)
	}
	for _, ss := range raw {
		sortSamples(ss)
	}
	steps := []time.Duration{time.Millisecond * 250, time.Second, 7 * time.Second, time.Minute, 13 * time.Minute, time.Hour}
	aggs := timeseries.Aggregates
	for _, step := range steps {
		for trial := range 3 {
			t.Run(fmt.Sprintf("step=%v/trial=%d", step, trial), func(t *testing.T) {
				// Ranges start and end mid-bucket.
				start := f.t0 + rng.Int64N(f.span/2)
				end := start + 1 + rng.Int64N(f.t0+f.span-start)
				if trial == 0 {
					start, end = f.t0-1, f.t0+f.span+1
				}
				r := timeseries.Range{Start: start, End: end}
				got, err := f.repo.Downsample(t.Context(), timeseries.Selector{Measurement: f.ns}, r, step, aggs)
				if err != nil {
					t.Fatalf("Downsample(%+v, %v): %v", r, step, err)
				}
				var want []timeseries.SeriesBuckets
				for _, s := range series {
					b := naiveDownsample(raw[s.Key()], r, step.Milliseconds(), aggs)
					if len(b) > 0 {
						want = append(want, timeseries.SeriesBuckets{Series: s, Buckets: b})
					}
				}
				slices.SortFunc(want, func(a, b timeseries.SeriesBuckets) int { return strings.Compare(a.Series.Key(), b.Series.Key()) })
				diffBuckets(t, fmt.Sprintf("Downsample(%+v, step %v, %v)", r, step, aggs), want, got)
				for _, sb := range got {
					for _, b := range sb.Buckets {
						if b.Start%step.Milliseconds() != 0 {
							t.Fatalf("bucket start %d not aligned to step %v", b.Start, step)
						}
					}
				}
			})
		}
	}
}

func testDeleteBefore(t *testing.T, f *fixture) {
	f.needMillis(t)
	s1 := f.series("", "device", "d1")
	s2 := f.series("", "device", "d2")
	var pts []telemetry.Point
	for i := range 120 {
		ts := f.t0 + int64(i)*60_000
		pts = append(pts, pt(s1, ts, float64(i)), pt(s2, ts+1, -float64(i)))
	}
	f.write(pts...)
	cutoff := f.t0 + 60*60_000 + 1 // keeps s1 from minute 61 on, s2 from minute 60 on
	if err := f.repo.DeleteBefore(t.Context(), cutoff); err != nil {
		t.Fatalf("DeleteBefore(%d): %v", cutoff, err)
	}
	var want []telemetry.Point
	for _, p := range pts {
		if p.Time >= cutoff {
			want = append(want, p)
		}
	}
	check := func(when string) {
		t.Helper()
		got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
		if diff := cmp.Diff(expected(want), got, cmpOpts...); diff != "" {
			t.Errorf("QueryRange %s (-want +got):\n%s", when, diff)
		}
		ls, err := f.repo.ListSeries(t.Context(), timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: f.t0 - 1, End: cutoff - 1})
		if err != nil {
			t.Fatalf("ListSeries: %v", err)
		}
		if len(ls) != 0 {
			t.Errorf("ListSeries before cutoff %s = %v, want none", when, ls)
		}
		ds, err := f.repo.Downsample(t.Context(), timeseries.Selector{Measurement: f.ns}, f.all(), time.Hour*24, []timeseries.Aggregate{timeseries.AggCount})
		if err != nil {
			t.Fatalf("Downsample: %v", err)
		}
		n := 0
		for _, sb := range ds {
			for _, b := range sb.Buckets {
				n += int(b.Values[0])
			}
		}
		if n != len(want) {
			t.Errorf("Downsample count %s = %d, want %d", when, n, len(want))
		}
	}
	check("after DeleteBefore")
	f.reopen()
	check("after DeleteBefore and reopen")
	// Data newer than the cutoff can still be written.
	extra := pt(s1, f.t0+f.span-1, 42)
	f.write(extra)
	want = append(want, extra)
	check("after a new write")
}

func testConcurrentWriters(t *testing.T, f *fixture) {
	f.needMillis(t)
	const writers, batches, perBatch = 8, 10, 50
	shared := f.series("", "device", "shared")
	same := f.series("", "device", "same")
	var mu sync.Mutex
	var want []telemetry.Point
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			own := f.series("", "device", fmt.Sprintf("w%d", w))
			for b := range batches {
				var batch, mine []telemetry.Point
				for i := range perBatch {
					n := int64(b*perBatch + i)
					ts := f.t0 + n*1000
					p1 := pt(own, ts, float64(w*100000)+float64(n))
					p2 := pt(shared, f.t0+(n*writers+int64(w))*10, float64(w)+float64(n)/1000)
					p3 := pt(same, ts, float64(n)*1.5) // every writer writes the same
					batch = append(batch, p1, p2, p3)
					mine = append(mine, p1, p2)
					if w == 0 {
						mine = append(mine, p3)
					}
				}
				if err := f.repo.WritePoints(context.Background(), batch); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
					return
				}
				mu.Lock()
				want = append(want, mine...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
	if diff := cmp.Diff(expected(want), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after concurrent writes (-want +got):\n%s", diff)
	}
}

func testReopen(t *testing.T, f *fixture) {
	f.needMillis(t)
	var pts []telemetry.Point
	for s := range 5 {
		sr := f.series("", "device", fmt.Sprintf("d%d", s))
		for i := range 100 {
			pts = append(pts, pt(sr, f.t0+int64(i)*1000, float64(s)+float64(i)/7))
		}
	}
	f.write(pts[:300]...)
	f.reopen()
	f.write(pts[300:]...)
	f.reopen()
	got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
	if diff := cmp.Diff(expected(pts), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after reopen (-want +got):\n%s", diff)
	}
}

func testCancelledContext(t *testing.T, f *fixture) {
	s := f.series("", "device", "d1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var pts []telemetry.Point
	for i := range 100 {
		pts = append(pts, pt(s, f.t0+int64(i)*1000, float64(i)))
	}
	err := f.repo.WritePoints(ctx, pts)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WritePoints(cancelled context) = %v, want context.Canceled", err)
	}
	if got := f.query(timeseries.Selector{Measurement: f.ns}, f.all()); len(got) != 0 {
		t.Errorf("QueryRange after cancelled write returned %d series, want none", len(got))
	}
	if _, err := f.repo.QueryRange(ctx, timeseries.Selector{Measurement: f.ns}, f.all()); !errors.Is(err, context.Canceled) {
		t.Errorf("QueryRange(cancelled context) = %v, want context.Canceled", err)
	}
}

func testNaNAndInf(t *testing.T, f *fixture) {
	f.needMillis(t)
	nans := []uint64{
		0x7ff8000000000001, // math.NaN()
		0x7ff0000000000002, // Prometheus StaleNaN
		0xfff8000000000000, // negative quiet NaN
		0x7ff0000000000001, // signalling NaN
		0x7fffffffffffffff,
	}
	s := f.series("", "device", "d1")
	var pts []telemetry.Point
	for i, b := range nans {
		pts = append(pts, pt(s, f.t0+int64(i)*1000, math.Float64frombits(b)))
	}
	pts = append(pts, pt(s, f.t0+10_000, math.Inf(1)), pt(s, f.t0+11_000, math.Inf(-1)), pt(s, f.t0+12_000, 3))
	f.write(pts...)
	// Rewriting a NaN with another NaN bit pattern is an identical rewrite.
	f.write(pt(s, f.t0, math.Float64frombits(nans[1])), pt(s, f.t0+1000, math.NaN()))
	got := f.query(timeseries.Selector{Measurement: f.ns}, f.all())
	if diff := cmp.Diff(expected(pts), got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange NaN/Inf (-want +got):\n%s", diff)
	}
	for _, ss := range got {
		for _, smp := range ss.Samples {
			if math.IsNaN(smp.Value) && math.Float64bits(smp.Value)&(1<<51) == 0 {
				t.Errorf("sample at %d read back as NaN %#x: not a quiet NaN (StaleNaN must be normalised)", smp.Time, math.Float64bits(smp.Value))
			}
		}
	}
	aggs := []timeseries.Aggregate{timeseries.AggCount, timeseries.AggSum, timeseries.AggAvg, timeseries.AggMin, timeseries.AggMax, timeseries.AggFirst, timeseries.AggLast}
	tests := []struct {
		name  string
		start int64
		end   int64
		want  []timeseries.Bucket // step 1h buckets containing t0
	}{
		{"only NaN: bucket omitted", 0, 5000, nil},
		{"NaN skipped, +Inf", 0, 11_000, []timeseries.Bucket{{Values: []float64{1, math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}}}},
		{"+Inf and -Inf", 0, 12_000, []timeseries.Bucket{{Values: []float64{2, math.NaN(), math.NaN(), math.Inf(-1), math.Inf(1), math.Inf(1), math.Inf(-1)}}}},
		{"-Inf and 3", 11_000, 13_000, []timeseries.Bucket{{Values: []float64{2, math.Inf(-1), math.Inf(-1), math.Inf(-1), 3, math.Inf(-1), 3}}}},
	}
	step := int64(time.Hour / time.Millisecond)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := timeseries.Range{Start: f.t0 + tc.start, End: f.t0 + tc.end}
			ds, err := f.repo.Downsample(t.Context(), timeseries.Selector{Measurement: f.ns}, r, time.Hour, aggs)
			if err != nil {
				t.Fatalf("Downsample(%+v): %v", r, err)
			}
			var want []timeseries.SeriesBuckets
			if tc.want != nil {
				b := tc.want[0]
				// t0 is a minute boundary; the data lies in the bucket of t0.
				b.Start = (f.t0 + tc.start) - ((f.t0+tc.start)%step+step)%step
				want = []timeseries.SeriesBuckets{{Series: s, Buckets: []timeseries.Bucket{b}}}
			}
			if diff := cmp.Diff(want, ds, cmpOpts...); diff != "" {
				t.Errorf("Downsample(%+v, %v) (-want +got):\n%s", r, aggs, diff)
			}
		})
	}
}

func testListSeries(t *testing.T, f *fixture) {
	a := f.series("", "device", "a", "room", "x")
	b := f.series("", "device", "b", "room", "y")
	c := f.series("_other", "device", "c", "room", "x")
	hour := int64(time.Hour / time.Millisecond)
	if f.span < 3*hour {
		hour = f.span / 3
	}
	f.write(pt(a, f.t0, 1), pt(a, f.t0+hour/2, 2), pt(b, f.t0+2*hour, 3), pt(c, f.t0+hour/2, 4))
	tests := []struct {
		name string
		sel  timeseries.Selector
		r    timeseries.Range
		want []telemetry.Series
	}{
		{"all of measurement", timeseries.Selector{Measurement: f.ns}, f.all(), []telemetry.Series{a, b}},
		{"first hour", timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: f.t0, End: f.t0 + hour}, []telemetry.Series{a}},
		{"third hour", timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: f.t0 + 2*hour, End: f.t0 + 3*hour}, []telemetry.Series{b}},
		{"gap", timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: f.t0 + hour, End: f.t0 + 2*hour}, nil},
		{"tag across measurements", timeseries.Selector{Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchRegexp, Value: "[ac]"}, {Key: "room", Op: timeseries.MatchEqual, Value: "x"}}}, f.all(), []telemetry.Series{a, c}},
		{"field", timeseries.Selector{Measurement: f.ns, Field: "other"}, f.all(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.repo.ListSeries(t.Context(), tc.sel, tc.r)
			if err != nil {
				t.Fatalf("ListSeries(%+v, %+v): %v", tc.sel, tc.r, err)
			}
			got = slices.DeleteFunc(got, func(s telemetry.Series) bool { return !strings.HasPrefix(s.Measurement, f.ns) })
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("ListSeries(%+v, %+v) (-want +got):\n%s", tc.sel, tc.r, diff)
			}
		})
	}
}

func testEmptyResults(t *testing.T, f *fixture) {
	sel := timeseries.Selector{Measurement: f.ns + "_nothing"}
	got, err := f.repo.QueryRange(t.Context(), sel, f.all())
	if err != nil || len(got) != 0 {
		t.Errorf("QueryRange(unknown measurement) = %v, %v; want empty, nil", got, err)
	}
	ds, err := f.repo.Downsample(t.Context(), sel, f.all(), time.Minute, []timeseries.Aggregate{timeseries.AggAvg})
	if err != nil || len(ds) != 0 {
		t.Errorf("Downsample(unknown measurement) = %v, %v; want empty, nil", ds, err)
	}
	ls, err := f.repo.ListSeries(t.Context(), sel, f.all())
	if err != nil || len(ls) != 0 {
		t.Errorf("ListSeries(unknown measurement) = %v, %v; want empty, nil", ls, err)
	}
	if err := f.repo.WritePoints(t.Context(), nil); err != nil {
		t.Errorf("WritePoints(no points) = %v, want nil", err)
	}
}

func testInvalidArguments(t *testing.T, f *fixture) {
	sel := timeseries.Selector{Measurement: f.ns}
	ok := f.all()
	one := []timeseries.Aggregate{timeseries.AggAvg}
	good := f.series("", "device", "d1")
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"query start equals end", func(ctx context.Context) error {
			_, err := f.repo.QueryRange(ctx, sel, timeseries.Range{Start: f.t0, End: f.t0})
			return err
		}},
		{"query start after end", func(ctx context.Context) error {
			_, err := f.repo.QueryRange(ctx, sel, timeseries.Range{Start: f.t0 + 1, End: f.t0})
			return err
		}},
		{"downsample start after end", func(ctx context.Context) error {
			_, err := f.repo.Downsample(ctx, sel, timeseries.Range{Start: f.t0 + 1, End: f.t0}, time.Minute, one)
			return err
		}},
		{"list start equals end", func(ctx context.Context) error {
			_, err := f.repo.ListSeries(ctx, sel, timeseries.Range{Start: f.t0, End: f.t0})
			return err
		}},
		{"step zero", func(ctx context.Context) error {
			_, err := f.repo.Downsample(ctx, sel, ok, 0, one)
			return err
		}},
		{"step negative", func(ctx context.Context) error {
			_, err := f.repo.Downsample(ctx, sel, ok, -time.Minute, one)
			return err
		}},
		{"unknown aggregate", func(ctx context.Context) error {
			_, err := f.repo.Downsample(ctx, sel, ok, time.Minute, []timeseries.Aggregate{"median"})
			return err
		}},
		{"no aggregate", func(ctx context.Context) error {
			_, err := f.repo.Downsample(ctx, sel, ok, time.Minute, nil)
			return err
		}},
		{"bad regexp", func(ctx context.Context) error {
			_, err := f.repo.QueryRange(ctx, timeseries.Selector{Measurement: f.ns, Tags: []timeseries.Matcher{{Key: "device", Op: timeseries.MatchRegexp, Value: "("}}}, ok)
			return err
		}},
		{"empty measurement", func(ctx context.Context) error {
			return f.repo.WritePoints(ctx, []telemetry.Point{pt(telemetry.NewSeries("", nil, "v"), f.t0, 1)})
		}},
		{"empty field", func(ctx context.Context) error {
			return f.repo.WritePoints(ctx, []telemetry.Point{pt(telemetry.NewSeries(f.ns, nil, ""), f.t0, 1)})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(t.Context()); !errors.Is(err, timeseries.ErrInvalid) {
				t.Errorf("got error %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("invalid point in a batch", func(t *testing.T) {
		batch := []telemetry.Point{pt(good, f.t0, 1), pt(telemetry.NewSeries(f.ns, nil, ""), f.t0, 2), pt(good, f.t0+1, 3)}
		partial(t, f.repo.WritePoints(t.Context(), batch), timeseries.ErrInvalid, 1)
		got := f.query(sel, ok)
		if diff := cmp.Diff(expected([]telemetry.Point{batch[0], batch[2]}), got, cmpOpts...); diff != "" {
			t.Errorf("QueryRange after batch with an invalid point (-want +got):\n%s", diff)
		}
	})
}

func testClosed(t *testing.T, f *fixture) {
	if err := f.repo.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.repo.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	sel := timeseries.Selector{Measurement: f.ns}
	ctx := t.Context()
	calls := map[string]func() error{
		"WritePoints": func() error {
			return f.repo.WritePoints(ctx, []telemetry.Point{pt(f.series("", "device", "d1"), f.t0, 1)})
		},
		"QueryRange": func() error { _, err := f.repo.QueryRange(ctx, sel, f.all()); return err },
		"Downsample": func() error {
			_, err := f.repo.Downsample(ctx, sel, f.all(), time.Minute, []timeseries.Aggregate{timeseries.AggMax})
			return err
		},
		"ListSeries":   func() error { _, err := f.repo.ListSeries(ctx, sel, f.all()); return err },
		"DeleteBefore": func() error { return f.repo.DeleteBefore(ctx, f.t0) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, timeseries.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
