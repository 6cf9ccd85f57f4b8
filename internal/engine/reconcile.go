package engine

import (
	"context"
	"math"
	"reflect"
	"slices"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// reconcile applies the current detector configurations to d's detectors
// (in memory or restored from checkpoints) when they changed since d was
// last reconciled (configSet.gen), and passes the events it closes to add.
// Per series (and likewise for the device detector), with the most
// specific configuration covering it:
//
//   - disabled, and a detector runs: the detector is dropped (readings are
//     no longer scored), its open event closes at its last hot reading as
//     if its CloseAfter clean readings had come, its open series-level
//     no-data event closes at the engine clock (and so does the device's
//     when no enabled series is left), and its checkpoint is deleted at
//     d's next checkpoint;
//   - enabled, and no detector runs (re-enabled): a new detector as
//     newSeries makes it (the active model's, else a cold one);
//   - enabled, the detector was not made from a model and its
//     configuration is not the resolved one (params changed): likewise a
//     new detector; the event tracker, the silence state and the time of
//     the last scored reading carry over, so an open event goes on (and
//     closes after CloseAfter clean readings of the new detector) and late
//     readings stay late.
//
// A detector started from a model keeps running when only params change
// (overrides do not apply to a model's detector). The caller holds d.mu.
func (e *Engine) reconcile(ctx context.Context, d *deviceState, add func(appdb.Anomaly, []announce)) error {
	set, err := e.configs(ctx)
	if err != nil {
		return err
	}
	if d.gen == set.gen {
		return nil
	}
	now := telemetry.Millis(e.now())
	keys := make([]string, 0, len(d.series))
	for k := range d.series {
		keys = append(keys, k)
	}
	slices.Sort(keys) // events in a deterministic order
	for _, key := range keys {
		s := d.series[key]
		cfg := e.cfg.Ensemble
		c, ok := resolve(set.ensemble, d.id, &s.series, key)
		if ok && !c.enabled {
			if s.ens != nil {
				e.disableSeries(d, key, s, now, add)
			}
			continue
		}
		if ok {
			cfg = c.ens
		}
		if s.ens != nil && (s.model != "" || reflect.DeepEqual(cfg, s.config(e.cfg))) {
			continue
		}
		ns, err := e.newSeriesIn(ctx, set, d.id, key, s.series)
		if err != nil {
			return err
		}
		ns.scored, ns.tr, ns.nd = s.scored, s.tr, s.nd
		// Write the new detector's state over the old checkpoint.
		ns.dirty = ns.scored != math.MinInt64
		d.series[key] = ns
	}
	if e.cfg.DeviceDetection {
		if err := e.reconcileDevice(ctx, set, d, add); err != nil {
			return err
		}
	}
	d.gen = set.gen
	return nil
}

// reconcileDevice is reconcile for d's device detector.
func (e *Engine) reconcileDevice(ctx context.Context, set *configSet, d *deviceState, add func(appdb.Anomaly, []announce)) error {
	cfg := e.cfg.Device
	c, ok := resolve(set.device, d.id, nil, "")
	if ok {
		cfg = c.dev
	}
	switch {
	case ok && !c.enabled:
		e.retireDevice(d, add)
		d.devOff = true
	case d.devOff:
		d.devOff = false // newDevice makes it at the device's next row
	case d.dev != nil && d.dev.model == "" && !reflect.DeepEqual(cfg, d.dev.cfg):
		old := d.dev
		var sensors []string
		for k, s := range d.series {
			if s.ens != nil {
				sensors = append(sensors, k)
			}
		}
		if len(sensors) < 2 {
			e.retireDevice(d, add) // made again once two series are enabled
			return nil
		}
		d.dev = nil
		if err := e.newDeviceIn(ctx, set, d, sensors); err != nil {
			d.dev = old
			return err
		}
		d.dev.scored, d.dev.tr, d.dev.dirty = old.scored, old.tr, true
	}
	return nil
}

// retireDevice drops d's device detector, closing its open event and
// deleting its checkpoint at d's next checkpoint.
func (e *Engine) retireDevice(d *deviceState, add func(appdb.Anomaly, []announce)) {
	if d.dev == nil {
		return
	}
	if tr := &d.dev.tr; tr.Open {
		tr.Open = false
		if !tr.Muted {
			add(tr.snapshot(d.id, "", d.dev.model), []announce{{ActionClose, tr.Severity}})
		}
	}
	d.dev = nil
	d.retire(devicePrefix(d.id))
}

// disableSeries drops the detector of series key of d (s), closing its
// events (see reconcile). Its last scored time is kept, so a redelivery
// stays late if it is enabled again.
func (e *Engine) disableSeries(d *deviceState, key string, s *seriesState, now int64, add func(appdb.Anomaly, []announce)) {
	if tr := &s.tr; tr.Open {
		tr.Open = false
		if !tr.Muted {
			a := tr.snapshot(d.id, key, s.model)
			if len(a.Sensors) == 0 {
				a.Sensors = []string{s.series.Field}
			}
			add(a, []announce{{ActionClose, tr.Severity}})
		}
	}
	if ev := &s.nd.Event; ev.Open {
		ev.Open, ev.End = false, max(now, ev.Start)
		if !ev.Muted {
			add(ev.snapshot(d.id, key), []announce{{ActionClose, detect.SeverityWarning}})
		}
	}
	if ev := s.nd.Device; ev.Open {
		others := false
		for k, o := range d.series {
			if k != key && o.ens != nil {
				others = true
				break
			}
		}
		if !others { // nobody left to close it at its next reading
			ev.Open, ev.End = false, max(now, ev.Start)
			for _, o := range d.series {
				o.nd.Device = ev
			}
			if !ev.Muted {
				add(ev.snapshot(d.id, ""), []announce{{ActionClose, detect.SeverityWarning}})
			}
		}
	}
	*s = seriesState{series: s.series, scored: s.scored}
	d.retire(devicePrefix(d.id) + key)
}

// retire schedules the deletion of checkpoint key at d's next checkpoint.
func (d *deviceState) retire(key string) {
	if d.retired == nil {
		d.retired = map[string]bool{}
	}
	d.retired[key] = true
}

// reconcileEvents is reconcile, returning the events it closed.
func (e *Engine) reconcileEvents(ctx context.Context, d *deviceState) ([]event, error) {
	var evs []event
	err := e.reconcile(ctx, d, func(a appdb.Anomaly, acts []announce) {
		evs = append(evs, event{anomaly: a, actions: acts})
	})
	return evs, err
}
