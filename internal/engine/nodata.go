package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// silence is a no-data event (or a muted episode) found by the silence
// check. It is part of the checkpointed state.
type silence struct {
	Open    bool     `json:"open,omitempty"`
	Muted   bool     `json:"muted,omitempty"`
	ID      string   `json:"id,omitempty"`
	Start   int64    `json:"start,omitempty"`
	End     int64    `json:"end,omitempty"`
	Sensors []string `json:"sensors,omitempty"`
}

// seriesNoData is the silence state of one series, checkpointed with it.
type seriesNoData struct {
	// Live: the series' last reading was recent (within its silence
	// limit of the engine clock) when it was scored; only live series are
	// judged silent.
	Live bool `json:"live,omitempty"`
	// Silent: the silence check found the series silent since Since and
	// no reading came since.
	Silent bool  `json:"silent,omitempty"`
	Since  int64 `json:"since,omitempty"`
	// Event is the series-level no-data event.
	Event silence `json:"event,omitzero"`
	// Device is the device-level no-data event (the same in every series
	// of the device: the device has no checkpoint of its own without a
	// device detector).
	Device silence `json:"device,omitzero"`
}

func (n *seriesNoData) zero() bool {
	return !n.Live && !n.Silent && n.Since == 0 && n.Event.ID == "" && n.Device.ID == ""
}

// noDataKey is the key of the no-data events of a series (or, with
// "device:" + id, of a device) in their IDs.
func noDataKey(key string) string { return "nodata:" + key }

// snapshot is the anomaly record of the no-data event s.
func (s *silence) snapshot(device, seriesKey string) appdb.Anomaly {
	a := appdb.Anomaly{
		ID:        s.ID,
		SeriesKey: seriesKey,
		Device:    device,
		Start:     telemetry.FromMillis(s.Start),
		PeakScore: 1,
		Severity:  severityOf(detect.SeverityWarning),
		Detectors: []string{detect.DetNoData},
		Sensors:   slices.Clone(s.Sensors),
	}
	if !s.Open {
		a.End = telemetry.FromMillis(s.End)
	}
	return a
}

// live reports whether a reading at t scored at now (Unix ms) is recent
// enough for the series' silence to be judged against the clock: not older
// than the series' silence limit (GapFactor learned intervals).
func live(ens *detect.Ensemble, t, now int64) bool {
	lim := ens.Config().GapFactor * ens.Interval()
	return lim > 0 && float64(now-t) <= lim
}

// resumed is called by score when a reading at t arrives for series s of
// d: it closes the no-data events the silence of s (or of d) opened, and
// reports whether the silence check had reported the gap this reading ends
// (the detector's own gap result must then not open a second event).
func (e *Engine) resumed(d *deviceState, key string, s *seriesState, t int64, add func(appdb.Anomaly, []announce)) bool {
	reported := s.nd.Silent
	s.nd.Silent, s.nd.Since = false, 0
	if ev := &s.nd.Event; ev.Open {
		ev.Open, ev.End = false, t
		s.dirty = true
		if !ev.Muted {
			add(ev.snapshot(d.id, key), []announce{{ActionClose, detect.SeverityWarning}})
		}
	}
	if ev := &s.nd.Device; ev.Open {
		ev.Open, ev.End = false, t
		for _, o := range d.series {
			o.nd.Device = *ev
			o.dirty = true
		}
		if !ev.Muted {
			add(ev.snapshot(d.id, ""), []announce{{ActionClose, detect.SeverityWarning}})
		}
	}
	return reported
}

// withoutNoData removes the no-data signal from r (a gap the silence check
// already reported): r stays an anomaly only for its other detectors.
func withoutNoData(r detect.Result) detect.Result {
	if !slices.Contains(r.Detectors, detect.DetNoData) {
		return r
	}
	r.Detectors = slices.DeleteFunc(slices.Clone(r.Detectors), func(s string) bool { return s == detect.DetNoData })
	if len(r.Detectors) == 0 {
		r.Anomaly, r.Onset, r.Severity = false, false, detect.SeverityNone
		r.Score = 0
	}
	return r
}

// CheckSilence judges the silence of every device in memory at the
// engine's clock and records the no-data events it opens: one device-level
// event when all the device's judged series are silent, else one event per
// silent series while another series of the device reports. Run calls it
// every SilenceCheck.
func (e *Engine) CheckSilence(ctx context.Context) error {
	now := telemetry.Millis(e.now())
	var errs []error
	for _, d := range e.snapshotDevices() {
		d.mu.Lock()
		if !d.gone && d.loaded {
			evs, err := e.reconcileEvents(ctx, d)
			if err == nil {
				var more []event
				more, err = e.checkDevice(ctx, d, now)
				evs = append(evs, more...)
			}
			if err == nil {
				err = e.record(ctx, evs)
			}
			if err != nil {
				e.drop(d)
				errs = append(errs, fmt.Errorf("silence check of device %q: %w", d.id, err))
			}
		}
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// checkDevice is CheckSilence for d. The caller holds d.mu.
func (e *Engine) checkDevice(ctx context.Context, d *deviceState, now int64) ([]event, error) {
	keys := make([]string, 0, len(d.series))
	for k, s := range d.series {
		if s.ens != nil && s.ens.Warm() && s.nd.Live {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(keys)
	var silent []string
	lastSince := int64(math.MinInt64)
	for _, k := range keys {
		s := d.series[k]
		if !s.nd.Silent {
			if _, ok := s.ens.Silent(now); !ok {
				continue
			}
			s.nd.Silent = true
			s.nd.Since = s.scored + int64(math.Round(s.ens.Interval()))
			s.dirty = true
		}
		silent = append(silent, k)
		lastSince = max(lastSince, s.nd.Since)
	}
	if len(silent) == 0 {
		return nil, nil
	}
	var evs []event
	if len(silent) == len(keys) {
		first := d.series[keys[0]]
		if first.nd.Device.Open {
			return nil, nil
		}
		muted, err := e.muted(ctx, d.id, nil, lastSince)
		if err != nil {
			return nil, err
		}
		ev := silence{Open: true, Muted: muted, ID: eventID(noDataKey("device:"+d.id), lastSince), Start: lastSince, Sensors: silent}
		for _, s := range d.series {
			s.nd.Device = ev
			s.dirty = true
		}
		if !muted {
			evs = append(evs, event{anomaly: ev.snapshot(d.id, ""), actions: []announce{{ActionOpen, detect.SeverityWarning}}})
		}
		return evs, nil
	}
	for _, k := range silent {
		s := d.series[k]
		if s.nd.Event.Open {
			continue
		}
		// A series-level event only while another series reports: a
		// series not yet silent that has not reported since may be about
		// to go silent too (the device stopped).
		reports := false
		for _, o := range keys {
			if os := d.series[o]; !os.nd.Silent && os.scored >= s.nd.Since {
				reports = true
				break
			}
		}
		if !reports {
			continue
		}
		muted, err := e.muted(ctx, d.id, &s.series, s.nd.Since)
		if err != nil {
			return nil, err
		}
		s.nd.Event = silence{Open: true, Muted: muted, ID: eventID(noDataKey(k), s.nd.Since), Start: s.nd.Since, Sensors: []string{s.series.Field}}
		s.dirty = true
		if !muted {
			evs = append(evs, event{anomaly: s.nd.Event.snapshot(d.id, k), actions: []announce{{ActionOpen, detect.SeverityWarning}}})
		}
	}
	return evs, nil
}

// awaitingSilenceFactor bounds how long an idle device is kept in memory
// for the silence check: awaitingSilenceFactor × GapFactor learned
// intervals after its last reading (the silence limit is at least GapFactor
// intervals, more for a series that learned long silences).
const awaitingSilenceFactor = 4

// awaitingSilence reports whether d has a live series whose silence the
// silence check has not judged yet (idle eviction would forget it before
// its silence limit): d is then kept in memory. The caller holds d.mu.
func awaitingSilence(d *deviceState, now int64) bool {
	for _, s := range d.series {
		if s.ens == nil || !s.ens.Warm() || !s.nd.Live || s.nd.Silent {
			continue
		}
		if float64(now-s.scored) <= awaitingSilenceFactor*s.ens.Config().GapFactor*s.ens.Interval() {
			return true
		}
	}
	return false
}
