package engine_test

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// silenceBase is the time of reading 0 of the silence tests; readings come
// every second.
var silenceBase = time.Now().Add(-6 * time.Hour).Truncate(time.Second).UnixMilli()

// sim drives an engine with an injected clock: readings of device d1, and
// the silence check every 10 s of clock time, as Run does.
type sim struct {
	t   *testing.T
	env *env
	en  *engine.Engine
	clk *atomic.Int64 // Unix ms
	cfg engine.Config
}

func newSim(t *testing.T, e *env, mod ...func(*engine.Config)) *sim {
	s := &sim{t: t, env: e, clk: new(atomic.Int64), cfg: engine.DefaultConfig()}
	for _, m := range mod {
		m(&s.cfg)
	}
	s.en = s.engine()
	return s
}

// engine returns a new engine on s's stores and clock (a restart).
func (s *sim) engine() *engine.Engine {
	s.t.Helper()
	en, err := engine.New(s.env.ts, s.env.db, nil, engine.Options{
		Config: s.cfg,
		Now:    func() time.Time { return time.UnixMilli(s.clk.Load()) },
	})
	if err != nil {
		s.t.Fatalf("engine.New: %v", err)
	}
	return en
}

func seriesOf(field string) telemetry.Series {
	return telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}}, field)
}

func at(i int) int64 { return silenceBase + int64(i)*1000 }

// run feeds readings [from, to) of fields in batches of 10 seconds, the
// clock following the readings (live data), checking silence after each
// batch.
func (s *sim) run(from, to int, fields ...string) {
	s.t.Helper()
	for b := from; b < to; b += 10 {
		var pts []telemetry.Point
		for i := b; i < min(b+10, to); i++ {
			for _, f := range fields {
				rng := rand.New(rand.NewPCG(uint64(i), uint64(len(f))))
				pts = append(pts, telemetry.Point{Series: seriesOf(f), Time: at(i), Value: 50 + rng.NormFloat64()})
			}
		}
		s.clk.Store(pts[len(pts)-1].Time + 100)
		s.env.feed(s.t, s.en, pts)
		s.check()
	}
}

// idle moves the clock to reading time to (no readings), checking silence
// every 10 s.
func (s *sim) idle(to int) {
	s.t.Helper()
	for c := s.clk.Load() + 10000; c <= at(to); c += 10000 {
		s.clk.Store(c)
		s.check()
	}
}

func (s *sim) check() {
	s.t.Helper()
	s.en.Evict(s.t.Context())
	if err := s.en.CheckSilence(s.t.Context()); err != nil {
		s.t.Fatalf("CheckSilence: %v", err)
	}
}

// noData returns the recorded no-data events and the actions announced
// for them, by event ID.
func (s *sim) noData() ([]appdb.Anomaly, map[string][]string) {
	s.t.Helper()
	var evs []appdb.Anomaly
	for _, a := range s.env.anomalies(s.t) {
		if slices.Contains(a.Detectors, "nodata") {
			evs = append(evs, a)
		}
	}
	acts := map[string][]string{}
	for _, n := range s.env.outbox(s.t) {
		acts[n.Anomaly.ID] = append(acts[n.Anomaly.ID], n.Action)
	}
	for id := range acts {
		slices.Sort(acts[id])
	}
	return evs, acts
}

func (s *sim) wantNoData(want []appdb.Anomaly, wantActs []string) {
	s.t.Helper()
	got, acts := s.noData()
	for i := range got {
		got[i].ID, got[i].State = "", ""
	}
	if d := cmp.Diff(want, got, eventCmp); d != "" {
		s.t.Errorf("no-data events (-want +got):\n%s", d)
	}
	var gotActs []string
	for _, a := range s.env.anomalies(s.t) {
		if slices.Contains(a.Detectors, "nodata") {
			gotActs = append(gotActs, acts[a.ID]...)
		}
	}
	if d := cmp.Diff(wantActs, gotActs); d != "" {
		s.t.Errorf("announcements (-want +got):\n%s", d)
	}
}

func noDataEvent(series string, start, end int64, sensors ...string) appdb.Anomaly {
	a := appdb.Anomaly{
		SeriesKey: series, Device: "d1", Start: telemetry.FromMillis(start),
		PeakScore: 1, Severity: appdb.SeverityWarning, Detectors: []string{"nodata"}, Sensors: sensors,
	}
	if end != 0 {
		a.End = telemetry.FromMillis(end)
	}
	return a
}

// TestDeviceSilent: a device that stops sending gets one device-level
// no-data event, from its last reading plus its interval, closed by its
// next reading; the detector's own gap result does not open another.
func TestDeviceSilent(t *testing.T) {
	s := newSim(t, newEnv(t))
	s.run(0, 300, "a", "b")
	s.wantNoData(nil, nil)
	s.idle(360)
	keys := []string{seriesOf("a").Key(), seriesOf("b").Key()}
	s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), 0, keys...)}, []string{"open"})
	s.run(360, 400, "a", "b")
	s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), at(360), keys...)}, []string{"close", "open"})
	s.idle(420) // silent again, less than its limit: nothing new
	s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), at(360), keys...)}, []string{"close", "open"})
}

// TestSensorSilent: one silent series of a device whose other series
// reports gets a series-level event.
func TestSensorSilent(t *testing.T) {
	s := newSim(t, newEnv(t))
	s.run(0, 200, "a", "b")
	s.run(200, 300, "a")
	key := seriesOf("b").Key()
	s.wantNoData([]appdb.Anomaly{noDataEvent(key, at(200), 0, "b")}, []string{"open"})
	s.run(300, 330, "a", "b")
	s.wantNoData([]appdb.Anomaly{noDataEvent(key, at(200), at(300), "b")}, []string{"close", "open"})
}

// TestSilenceNotJudged: history scored long after it was written, and
// series not warm yet, are not judged against the clock.
func TestSilenceNotJudged(t *testing.T) {
	t.Run("backfill", func(t *testing.T) {
		s := newSim(t, newEnv(t))
		s.clk.Store(at(0) + 5*time.Hour.Milliseconds())
		for b := 0; b < 300; b += 50 {
			var pts []telemetry.Point
			for i := b; i < b+50; i++ {
				pts = append(pts, telemetry.Point{Series: seriesOf("a"), Time: at(i), Value: 50 + float64(i%7)/10},
					telemetry.Point{Series: seriesOf("b"), Time: at(i), Value: 20 + float64(i%5)/10})
			}
			s.env.feed(t, s.en, pts)
			s.check()
		}
		s.idle(int(5*time.Hour/time.Second) + 600)
		s.wantNoData(nil, nil)
	})
	t.Run("cold", func(t *testing.T) {
		s := newSim(t, newEnv(t))
		s.run(0, 100, "a", "b") // warm-up is 150 readings
		s.idle(400)
		s.wantNoData(nil, nil)
	})
}

// TestSilenceMaintenance: a silence starting in a maintenance window of
// the device is not recorded, nor is its end.
func TestSilenceMaintenance(t *testing.T) {
	e := newEnv(t)
	w := appdb.MaintenanceWindow{Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"},
		Start: telemetry.FromMillis(at(290)), End: telemetry.FromMillis(at(310)), Reason: "test"}
	if _, err := e.db.Maintenance().Create(t.Context(), w); err != nil {
		t.Fatalf("create window: %v", err)
	}
	s := newSim(t, e)
	s.run(0, 300, "a", "b")
	s.idle(360)
	s.run(360, 400, "a", "b")
	s.wantNoData(nil, nil)
}

// TestSilenceRestart: a restart, with or without a checkpoint taken after
// the event opened, neither duplicates the event nor loses its close.
func TestSilenceRestart(t *testing.T) {
	for _, flush := range []bool{true, false} {
		t.Run(map[bool]string{true: "checkpointed", false: "crash"}[flush], func(t *testing.T) {
			s := newSim(t, newEnv(t))
			s.run(0, 300, "a", "b")
			if err := s.en.Flush(t.Context()); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			s.idle(360)
			if flush {
				if err := s.en.Flush(t.Context()); err != nil {
					t.Fatalf("Flush: %v", err)
				}
			}
			s.en = s.engine()
			if err := s.en.Resume(t.Context()); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			s.idle(380)
			keys := []string{seriesOf("a").Key(), seriesOf("b").Key()}
			s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), 0, keys...)}, []string{"open"})
			s.run(380, 420, "a", "b")
			s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), at(380), keys...)}, []string{"close", "open"})
		})
	}
}

// TestSilenceEviction: an idle device is kept in memory until its silence
// is judged, then evicted; its next reading reloads it and closes the
// event.
func TestSilenceEviction(t *testing.T) {
	s := newSim(t, newEnv(t), func(c *engine.Config) { c.IdleTimeout = 5 * time.Second })
	s.run(0, 300, "a", "b")
	s.idle(360)
	keys := []string{seriesOf("a").Key(), seriesOf("b").Key()}
	s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), 0, keys...)}, []string{"open"})
	if n := s.en.Stats().Devices; n != 0 {
		t.Errorf("%d devices in memory after the silence was judged, want 0 (evicted)", n)
	}
	s.run(360, 400, "a", "b")
	s.wantNoData([]appdb.Anomaly{noDataEvent("", at(300), at(360), keys...)}, []string{"close", "open"})
}
