package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// The device registry (appdb.Device) is fed by the engine: see "Device
// registry" in the package documentation.

// intervalChange is the relative change of a device's learned reporting
// interval that is written to the registry; smaller drifts are not, to
// spare the store a write per checkpoint.
const intervalChange = 0.10

// seen is what the engine learned of a device since its last registry
// write: the range of its reading times and its reporting interval.
type seen struct {
	first, last int64         // Unix ms; valid when ok
	interval    time.Duration // device-level summary; 0: unknown
	ok          bool          // readings were seen
}

// add widens s to include the reading time t (Unix ms).
func (s *seen) add(t int64) {
	if !s.ok {
		s.first, s.last, s.ok = t, t, true
		return
	}
	s.first, s.last = min(s.first, t), max(s.last, t)
}

// merge folds o, observed before s's readings, into s (the write of o
// failed and is retried with s).
func (s *seen) merge(o seen) {
	if !o.ok {
		return
	}
	if s.interval == 0 {
		s.interval = o.interval
	}
	if !s.ok {
		s.first, s.last, s.ok = o.first, o.last, true
		return
	}
	s.first, s.last = min(s.first, o.first), max(s.last, o.last)
}

// stored is what the engine knows of a device's registry entry from its
// last writes, to skip the writes that would change nothing.
type stored struct {
	first, last time.Time
	interval    time.Duration
	known       bool
}

func storedOf(d appdb.Device) stored {
	return stored{first: d.FirstSeen, last: d.LastSeen, interval: d.ReportInterval, known: true}
}

// reportInterval is the device-level reporting interval of d: the median
// of the learned intervals (detect.Ensemble.Interval) of its series with
// detection on that learned one, the lower middle one for an even count; 0
// when none has. The median is the interval at which most of the device's
// series report, whatever one odd series does. The caller holds d.mu.
func reportInterval(d *deviceState) time.Duration {
	var ivs []float64
	for _, s := range d.series {
		if s.ens == nil {
			continue
		}
		if iv := s.ens.Interval(); iv > 0 && !math.IsInf(iv, 0) {
			ivs = append(ivs, iv)
		}
	}
	if len(ivs) == 0 {
		return 0
	}
	slices.Sort(ivs)
	return time.Duration(ivs[(len(ivs)-1)/2] * float64(time.Millisecond))
}

// materially reports whether the reporting interval was changed enough
// from old to be written.
func materially(old, now time.Duration) bool {
	if now <= 0 {
		return false
	}
	if old <= 0 {
		return true
	}
	return math.Abs(float64(now-old)) > intervalChange*float64(old)
}

// takeSeen returns what d learned since its last registry write and
// forgets it; ok false when d got no reading since. The caller holds d.mu.
func (d *deviceState) takeSeen() (seen, stored, bool) {
	if !d.seen.ok {
		return seen{}, stored{}, false
	}
	s := d.seen
	s.interval = reportInterval(d)
	d.seen = seen{}
	return s, d.stored, true
}

// keepOrphan records s as unwritten registry state of device id. The
// caller holds e.mu.
func (e *Engine) keepOrphan(id string, s seen) {
	if o, ok := e.orphans[id]; ok {
		s.merge(o)
	}
	if e.orphans == nil {
		e.orphans = make(map[string]seen)
	}
	e.orphans[id] = s
}

// flushRegistry writes what d learned since its last registry write,
// without holding d.mu during the writes (scoring goes on). A failure is
// logged and the state kept for the next Flush.
func (e *Engine) flushRegistry(ctx context.Context, d *deviceState) {
	d.mu.Lock()
	var s seen
	var st stored
	ok := false
	if !d.gone && d.loaded {
		s, st, ok = d.takeSeen()
	}
	d.mu.Unlock()
	if !ok {
		return
	}
	err := e.writeRegistry(ctx, d.id, s, &st)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.stored = st
		return
	}
	e.logRegistry(ctx, d.id, err)
	if d.gone {
		e.mu.Lock()
		e.keepOrphan(d.id, s)
		e.mu.Unlock()
		return
	}
	d.seen.merge(s)
}

// flushOrphans writes the registry state of dropped devices.
func (e *Engine) flushOrphans(ctx context.Context) {
	e.mu.Lock()
	pending := e.orphans
	e.orphans = nil
	e.mu.Unlock()
	for id, s := range pending {
		var st stored
		if err := e.writeRegistry(ctx, id, s, &st); err != nil {
			e.logRegistry(ctx, id, err)
			e.mu.Lock()
			e.keepOrphan(id, s)
			e.mu.Unlock()
		}
	}
}

func (e *Engine) logRegistry(ctx context.Context, device string, err error) {
	if ctx.Err() == nil {
		e.log.Warn("device registry not updated; will retry", "device", device, "err", err)
	}
}

// writeRegistry records s in the registry entry of device id: its first
// and last reading times (appdb.DeviceRepository.Seen, which creates the
// device when missing) and, when it changed materially, its reporting
// interval (Get, then Update, once more on a version conflict). st is what
// is known of the entry, updated as it is written.
func (e *Engine) writeRegistry(ctx context.Context, id string, s seen, st *stored) error {
	devs := e.db.Devices()
	first, last := telemetry.FromMillis(s.first), telemetry.FromMillis(s.last)
	if !st.known || first.Before(st.first) {
		d, err := devs.Seen(ctx, id, first)
		if err != nil {
			return fmt.Errorf("device %q seen at %v: %w", id, first, err)
		}
		*st = storedOf(d)
	}
	if last.After(st.last) {
		d, err := devs.Seen(ctx, id, last)
		if err != nil {
			return fmt.Errorf("device %q seen at %v: %w", id, last, err)
		}
		*st = storedOf(d)
	}
	if !materially(st.interval, s.interval) {
		return nil
	}
	for try := 0; ; try++ {
		d, err := devs.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("report interval of device %q: %w", id, err)
		}
		if !materially(d.ReportInterval, s.interval) {
			*st = storedOf(d)
			return nil
		}
		d.ReportInterval = s.interval
		d, err = devs.Update(ctx, d)
		if err == nil {
			*st = storedOf(d)
			return nil
		}
		if try > 0 || !errors.Is(err, appdb.ErrConflict) {
			return fmt.Errorf("report interval %v of device %q: %w", s.interval, id, err)
		}
	}
}
