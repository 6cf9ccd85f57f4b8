package models

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// DefaultQuiet is the default BacktestOptions.Quiet.
const DefaultQuiet = 30

// BacktestOptions are the optional parts of a backtest.
type BacktestOptions struct {
	// Quiet is the number of consecutive non-anomalous readings (rows, for
	// the device detector) that close an event; DefaultQuiet when 0.
	Quiet int
	// Progress, when set, is called after each window of history is read.
	Progress func(Progress)
}

// Event is one anomaly a model would have raised: a run of anomalous
// readings of one series (or rows of the device detector), closed by a
// quiet period.
type Event struct {
	// Series is the series key, or the model name for the device detector.
	Series string
	// Start and End are the times of the first and last anomalous reading,
	// Unix ms.
	Start, End int64
	// Peak is the highest score and PeakAt its time.
	Peak   float64
	PeakAt int64
	// Severity is the highest severity raised during the event.
	Severity detect.Severity
	// Readings is the number of anomalous readings in the event.
	Readings int
	// Detectors are the detectors at the peak.
	Detectors []string
	// Open is true when the data ended before the quiet period did.
	Open bool
}

// Report is the outcome of a backtest.
type Report struct {
	Model   string
	Version int
	Range   timeseries.Range
	// Readings is the number of readings scored; DeviceRows the number of
	// rows scored by the device detector.
	Readings   int64
	DeviceRows int64
	// Events are sorted by Start, then Series.
	Events []Event
	// PerSeries counts the events of each series key (and of the model
	// name for device events); series without events are absent.
	PerSeries map[string]int
}

// AnomaliesPer100k returns the number of events per 100 000 readings
// scored (0 when none were).
func (r Report) AnomaliesPer100k() float64 {
	if r.Readings == 0 {
		return 0
	}
	return float64(len(r.Events)) * 1e5 / float64(r.Readings)
}

// tracker groups anomalous readings of one stream into events.
type tracker struct {
	name  string
	quiet int
	cur   *Event
	calm  int
	out   *[]Event
}

func (k *tracker) observe(t int64, res detect.Result, anomalous bool) {
	if anomalous {
		if k.cur == nil {
			k.cur = &Event{Series: k.name, Start: t, PeakAt: t, Peak: -1}
		}
		e := k.cur
		e.End = t
		e.Readings++
		if res.Score > e.Peak {
			e.Peak, e.PeakAt, e.Detectors = res.Score, t, slices.Clone(res.Detectors)
		}
		e.Severity = max(e.Severity, res.Severity)
		k.calm = 0
		return
	}
	if k.cur == nil {
		return
	}
	k.calm++
	if k.calm >= k.quiet {
		k.close(false)
	}
}

func (k *tracker) close(open bool) {
	if k.cur != nil {
		k.cur.Open = open
		*k.out = append(*k.out, *k.cur)
		k.cur = nil
	}
	k.calm = 0
}

// Backtest replays the history of rng through the detectors of m, starting
// from the model's learned state, and reports the events they would have
// raised. A reading is anomalous when the Ensemble flags it or its score
// reaches the model's threshold; a device row when the DeviceDetector holds
// an alarm. Replay ranges after the training range: readings older than the
// model's last one are scored but do not teach the reporting interval.
func (r *Registry) Backtest(ctx context.Context, m *Model, rng timeseries.Range, opts BacktestOptions) (Report, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	a := m.Artifact
	keys := make([]string, len(a.Series))
	for i, s := range a.Series {
		keys[i] = s.Key
	}
	f, err := r.newFeedOf(ctx, a.Scope, keys, rng)
	if err != nil {
		return Report{}, fmt.Errorf("backtest %s@%d: %w", m.Name, m.Version, err)
	}
	rep := Report{Model: m.Name, Version: m.Version, Range: rng, PerSeries: map[string]int{}}
	dets := make([]*detect.Ensemble, len(f.keys))
	tracks := make([]*tracker, len(f.keys))
	for i, k := range f.keys {
		if dets[i], err = a.Ensemble(k); err != nil {
			return Report{}, fmt.Errorf("backtest %s@%d: %w", m.Name, m.Version, err)
		}
		tracks[i] = &tracker{name: k, quiet: opts.Quiet, out: &rep.Events}
	}
	var (
		dev    *detect.DeviceDetector
		devCol []int // devCol[j]: feed column of sensor j
		devRow []float64
		devTr  *tracker
	)
	if a.Device != nil {
		if dev, err = a.DeviceDetector(); err != nil {
			return Report{}, fmt.Errorf("backtest %s@%d: %w", m.Name, m.Version, err)
		}
		for _, s := range a.Device.Sensors {
			i, ok := f.index[s]
			if !ok {
				return Report{}, fmt.Errorf("backtest %s@%d: %w: device sensor %q is not a series of the model", m.Name, m.Version, ErrCorrupt, s)
			}
			devCol = append(devCol, i)
		}
		devRow = make([]float64, len(devCol))
		devTr = &tracker{name: m.Name, quiet: opts.Quiet, out: &rep.Events}
	}
	threshold := a.Config.Threshold
	err = f.run(ctx, r, opts.Progress, func(t int64, row []float64, present []bool) {
		for i, ok := range present {
			if !ok {
				continue
			}
			res := dets[i].Update(t, row[i])
			rep.Readings++
			tracks[i].observe(t, res, res.Anomaly || res.Score >= threshold)
		}
		if dev != nil {
			for j, c := range devCol {
				devRow[j] = row[c]
			}
			res := dev.Update(t, devRow)
			rep.DeviceRows++
			devTr.observe(t, res, res.Anomaly)
		}
	})
	if err != nil {
		return Report{}, fmt.Errorf("backtest %s@%d: %w", m.Name, m.Version, err)
	}
	for _, k := range tracks {
		k.close(true)
	}
	if devTr != nil {
		devTr.close(true)
	}
	slices.SortFunc(rep.Events, func(x, y Event) int {
		return cmp.Or(cmp.Compare(x.Start, y.Start), strings.Compare(x.Series, y.Series))
	})
	for _, e := range rep.Events {
		rep.PerSeries[e.Series]++
	}
	return rep, nil
}
