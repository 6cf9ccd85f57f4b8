package models

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Progress reports how far a training run or backtest has read.
type Progress struct {
	Scope Scope
	// Done and Total count readings (Total as counted before reading, so
	// Done may end slightly apart from it when data arrives meanwhile).
	Done, Total int64
	// Through is the end of the last window read, Unix ms.
	Through int64
}

// TrainOptions are the optional parts of a training run.
type TrainOptions struct {
	// Progress, when set, is called after each window of history is read.
	Progress func(Progress)
}

// Train reads the history of scope in r from the time-series store, feeds
// it through fresh detectors (an Ensemble per series and, for a device with
// two or more series, a DeviceDetector across them) and saves the result as
// a new candidate version. It fails with ErrNoData when the scope has no
// readings in r.
func (r *Registry) Train(ctx context.Context, scope Scope, rng timeseries.Range) (Meta, error) {
	return r.TrainWith(ctx, scope, rng, TrainOptions{})
}

// TrainWith is Train with options.
func (r *Registry) TrainWith(ctx context.Context, scope Scope, rng timeseries.Range, opts TrainOptions) (Meta, error) {
	start := r.opts.Now()
	if err := scope.Validate(); err != nil {
		return Meta{}, fmt.Errorf("train: %w", err)
	}
	feed, err := r.newFeed(ctx, scope, rng)
	if err != nil {
		return Meta{}, fmt.Errorf("train %s: %w", scope, err)
	}
	dets := make([]*detect.Ensemble, len(feed.series))
	counts := make([]int64, len(feed.series))
	for i := range dets {
		dets[i] = detect.NewEnsemble(r.cfg)
	}
	var dev *detect.DeviceDetector
	if scope.Kind == ScopeDevice && len(feed.series) >= 2 && len(feed.series) <= maxSensors {
		dev = detect.NewDeviceDetector(r.dcfg, feed.keys)
	}
	tr := Training{Range: rng, First: math.MaxInt64, Last: math.MinInt64, Series: len(feed.series), Config: r.cfg}
	err = feed.run(ctx, r, opts.Progress, func(t int64, row []float64, present []bool) {
		tr.First, tr.Last = min(tr.First, t), max(tr.Last, t)
		for i, ok := range present {
			if ok {
				dets[i].Update(t, row[i])
				counts[i]++
				tr.Readings++
			}
		}
		if dev != nil {
			dev.Update(t, row)
			tr.DeviceRows++
		}
	})
	if err != nil {
		return Meta{}, fmt.Errorf("train %s: %w", scope, err)
	}
	if tr.Readings == 0 {
		return Meta{}, fmt.Errorf("train %s in [%d, %d): %w", scope, rng.Start, rng.End, ErrNoData)
	}
	art := Artifact{Scope: scope, Config: r.cfg, Series: make([]SeriesState, len(dets))}
	for i, d := range dets {
		st, err := d.MarshalBinary()
		if err != nil {
			return Meta{}, fmt.Errorf("train %s: series %q: %w", scope, feed.keys[i], err)
		}
		art.Series[i] = SeriesState{Key: feed.keys[i], Readings: counts[i], Warm: d.Warm(), State: st}
		if d.Warm() {
			tr.Warm++
		}
	}
	if dev != nil {
		st, err := dev.MarshalBinary()
		if err != nil {
			return Meta{}, fmt.Errorf("train %s: device detector: %w", scope, err)
		}
		art.Device = &DeviceState{Config: r.dcfg, Sensors: feed.keys, Rows: tr.DeviceRows, Warm: dev.Warm(), State: st}
		dc := r.dcfg
		tr.DeviceConfig = &dc
	}
	tr.Duration = r.opts.Now().Sub(start)
	m, err := r.Save(ctx, art, tr)
	if err != nil {
		return Meta{}, fmt.Errorf("train %s: %w", scope, err)
	}
	r.opts.Logger.Info("model trained", "model", m.Name, "version", m.Version, "readings", tr.Readings, "series", tr.Series, "duration", tr.Duration)
	return m, nil
}

// TrainEach trains one series model per series matching sel with readings
// in rng, in key order, and returns their metadata. It stops at the first
// error, returning the models trained so far.
func (r *Registry) TrainEach(ctx context.Context, sel timeseries.Selector, rng timeseries.Range, opts TrainOptions) ([]Meta, error) {
	if r.ts == nil {
		return nil, fmt.Errorf("train each: %w: no time-series store", ErrUnavailable)
	}
	series, err := r.ts.ListSeries(ctx, sel, rng)
	if err != nil {
		return nil, fmt.Errorf("train each: list series: %w", err)
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("train each: no series match in [%d, %d): %w", rng.Start, rng.End, ErrNoData)
	}
	var out []Meta
	for _, s := range series {
		m, err := r.TrainWith(ctx, SeriesScope(s.Key()), rng, opts)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// feed reads the history of a set of series window by window and hands it
// over as rows: one per distinct timestamp, with each series' value at that
// time (NaN and present=false when it has none).
type feed struct {
	scope   Scope
	sel     timeseries.Selector
	keys    []string // sorted
	series  []telemetry.Series
	index   map[string]int
	windows []timeseries.Range
	total   int64
}

// selectorOf returns the selector of scope. For a series it matches the
// series and any series with more tags; rows are filtered by key after.
func selectorOf(scope Scope) (timeseries.Selector, error) {
	switch scope.Kind {
	case ScopeSeries:
		s, err := telemetry.ParseSeriesKey(scope.Target)
		if err != nil {
			return timeseries.Selector{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		sel := timeseries.Selector{Measurement: s.Measurement, Field: s.Field}
		for _, t := range s.Tags {
			sel.Tags = append(sel.Tags, timeseries.Matcher{Key: t.Key, Op: timeseries.MatchEqual, Value: t.Value})
		}
		return sel, nil
	case ScopeDevice:
		return timeseries.Selector{Tags: []timeseries.Matcher{{Key: telemetry.DeviceTag, Op: timeseries.MatchEqual, Value: scope.Target}}}, nil
	}
	return timeseries.Selector{}, fmt.Errorf("%w: scope kind %q", ErrInvalid, scope.Kind)
}

// newFeed plans the reading of scope's history in rng: the series, and the
// windows (of Options.Window, aligned) that hold data, counted with one
// downsampling query.
func (r *Registry) newFeed(ctx context.Context, scope Scope, rng timeseries.Range) (*feed, error) {
	return r.newFeedOf(ctx, scope, nil, rng)
}

// newFeedOf is newFeed restricted to the series keys in only, when not nil.
func (r *Registry) newFeedOf(ctx context.Context, scope Scope, only []string, rng timeseries.Range) (*feed, error) {
	if r.ts == nil {
		return nil, fmt.Errorf("%w: no time-series store", ErrUnavailable)
	}
	if rng.Start >= rng.End {
		return nil, fmt.Errorf("%w: range [%d, %d) is empty", ErrInvalid, rng.Start, rng.End)
	}
	sel, err := selectorOf(scope)
	if err != nil {
		return nil, err
	}
	f := &feed{scope: scope, sel: sel, index: map[string]int{}}
	keep := func(s telemetry.Series) bool {
		k := s.Key()
		if scope.Kind == ScopeSeries && k != scope.Target {
			return false
		}
		if only != nil {
			_, ok := slices.BinarySearch(only, k)
			return ok
		}
		return true
	}
	step := r.opts.Window.Truncate(time.Millisecond)
	bs, err := r.ts.Downsample(ctx, sel, rng, step, []timeseries.Aggregate{timeseries.AggCount})
	if err != nil {
		return nil, fmt.Errorf("plan history: %w", err)
	}
	starts := map[int64]bool{}
	for _, sb := range bs {
		if !keep(sb.Series) {
			continue
		}
		f.series = append(f.series, sb.Series)
		for _, b := range sb.Buckets {
			starts[b.Start] = true
			f.total += int64(b.Values[0])
		}
	}
	if only != nil {
		// Series of the model without data in rng still get a column.
		have := map[string]bool{}
		for _, s := range f.series {
			have[s.Key()] = true
		}
		for _, k := range only {
			if !have[k] {
				s, err := telemetry.ParseSeriesKey(k)
				if err != nil {
					return nil, fmt.Errorf("%w: model series %q: %w", ErrCorrupt, k, err)
				}
				f.series = append(f.series, s)
			}
		}
	}
	slices.SortFunc(f.series, func(a, b telemetry.Series) int { return strings.Compare(a.Key(), b.Key()) })
	for i, s := range f.series {
		f.keys = append(f.keys, s.Key())
		f.index[s.Key()] = i
	}
	for _, st := range slices.Sorted(func(yield func(int64) bool) {
		for s := range starts {
			if !yield(s) {
				return
			}
		}
	}) {
		f.windows = append(f.windows, timeseries.Range{Start: max(st, rng.Start), End: min(st+step.Milliseconds(), rng.End)})
	}
	return f, nil
}

// run reads every window and calls row for each distinct timestamp, in time
// order. row and present are reused between calls.
func (f *feed) run(ctx context.Context, r *Registry, progress func(Progress), row func(t int64, vals []float64, present []bool)) error {
	vals := make([]float64, len(f.series))
	present := make([]bool, len(f.series))
	var done int64
	for _, w := range f.windows {
		res, err := r.ts.QueryRange(ctx, f.sel, w)
		if err != nil {
			return fmt.Errorf("read history [%d, %d): %w", w.Start, w.End, err)
		}
		// cols[i] are the samples of column i; pos[i] the next to merge.
		cols := make([][]timeseries.Sample, len(f.series))
		for _, ss := range res {
			if i, ok := f.index[ss.Series.Key()]; ok {
				cols[i] = ss.Samples
			}
		}
		pos := make([]int, len(cols))
		for {
			t := int64(math.MaxInt64)
			for i, c := range cols {
				if pos[i] < len(c) {
					t = min(t, c[pos[i]].Time)
				}
			}
			if t == math.MaxInt64 {
				break
			}
			for i, c := range cols {
				present[i] = pos[i] < len(c) && c[pos[i]].Time == t
				vals[i] = math.NaN()
				if present[i] {
					vals[i] = c[pos[i]].Value
					pos[i]++
					done++
				}
			}
			row(t, vals, present)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if progress != nil {
			progress(Progress{Scope: f.scope, Done: done, Total: f.total, Through: w.End})
		}
	}
	return nil
}
