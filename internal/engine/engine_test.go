package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/bus/membus"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

func TestEvents(t *testing.T) {
	const n, at = 2000, 1000
	tests := []struct {
		name       string
		fault      func(int) float64
		wantEvents int
	}{
		{"clean", nil, 0},
		{"spike", spikeAt(at, 15), 1},
		{"level_shift", shiftAt(at, 8), 1},
	}
	for _, tc := range tests {
		t.Run("fault="+tc.name, func(t *testing.T) {
			e := newEnv(t)
			en := e.engine(t, nil)
			pts := signal{"d1", "temp", n, tc.fault}.points(1)
			for _, b := range batches(pts, 100) {
				e.feed(t, en, b)
			}
			got := e.anomalies(t)
			if len(got) != tc.wantEvents {
				t.Fatalf("got %d events, want %d: %+v", len(got), tc.wantEvents, got)
			}
			if st := en.Stats(); st.Scored != n || st.Late != 0 {
				t.Errorf("stats %+v, want %d scored, 0 late", st, n)
			}
			if tc.wantEvents == 0 {
				if nt := e.outbox(t); len(nt) != 0 {
					t.Errorf("got %d notifications for clean data, want 0", len(nt))
				}
				return
			}
			a := got[0]
			faultT := telemetry.FromMillis(pts[at].Time)
			if a.Start.Before(faultT) || a.Start.After(faultT.Add(10*time.Second)) {
				t.Errorf("event starts %v, want within 10s after the fault at %v", a.Start, faultT)
			}
			if a.Ongoing() {
				t.Errorf("event %s still open at the end of clean data, want closed", a.ID)
			}
			if a.Device != "d1" || a.SeriesKey != pts[0].Series.Key() || a.State != appdb.StateOpen || len(a.Detectors) == 0 {
				t.Errorf("event %+v: want device d1, series %q, state open, detectors listed", a, pts[0].Series.Key())
			}
			var actions []string
			for _, nt := range e.outbox(t) {
				if nt.Anomaly.ID != a.ID {
					t.Errorf("notification for %s, want %s", nt.Anomaly.ID, a.ID)
				}
				actions = append(actions, nt.Action)
			}
			if len(actions) < 2 || actions[0] != engine.ActionOpen || actions[len(actions)-1] != engine.ActionClose {
				t.Errorf("notifications %v, want open ... close", actions)
			}
		})
	}
}

// TestRedelivery processes every batch twice, as an at-least-once bus may
// deliver it: the events and announcements are those of one delivery.
func TestRedelivery(t *testing.T) {
	pts := merge(signal{"d1", "temp", 1500, spikeAt(700, 15)}.points(1), signal{"d1", "hum", 1500, shiftAt(900, 8)}.points(2))
	run := func(twice bool) (*env, engine.Stats) {
		e := newEnv(t)
		en := e.engine(t, nil)
		for _, b := range batches(pts, 64) {
			e.feed(t, en, b)
			if twice {
				e.feed(t, en, b)
			}
		}
		return e, en.Stats()
	}
	once, _ := run(false)
	twice, st := run(true)
	want := once.anomalies(t)
	if len(want) == 0 {
		t.Fatal("no events in the reference run")
	}
	if d := diffEvents(twice.anomalies(t), want); d != "" {
		t.Errorf("events after redelivery differ (-want +got):\n%s", d)
	}
	if got, want := len(twice.outbox(t)), len(once.outbox(t)); got != want {
		t.Errorf("got %d notifications after redelivery, want %d", got, want)
	}
	if st.Late != int64(len(pts)) || st.Scored != int64(len(pts)) {
		t.Errorf("stats %+v, want %d scored and %d late", st, len(pts), len(pts))
	}
}

// TestRestart stops the engine in the middle of an event and starts a new
// one on the same stores: a clean stop (checkpoints flushed), and a crash
// after which the last checkpoint is older than what was scored and some
// stored readings never reached the engine. Both give the same events as an
// uninterrupted run.
func TestRestart(t *testing.T) {
	const n = 2000
	pts := merge(
		signal{"d1", "temp", n, shiftAt(1000, 10)}.points(1),
		signal{"d1", "hum", n, nil}.points(2),
		signal{"d2", "temp", n, spikeAt(1500, 15)}.points(3),
	)
	bs := batches(pts, 90)

	ref := newEnv(t)
	en := ref.engine(t, nil)
	for _, b := range bs {
		ref.feed(t, en, b)
	}
	want := ref.anomalies(t)
	if len(want) < 2 {
		t.Fatalf("reference run has %d events, want at least 2", len(want))
	}

	tests := []struct {
		name string
		// checkpointAt is the batch after which the first engine
		// checkpoints; it processes batches up to stopAt; batches from
		// lostFrom to stopAt are stored but never reach it (a crash).
		checkpointAt, stopAt, lostFrom int
		flushAtStop                    bool
	}{
		{name: "clean_stop", checkpointAt: 22, stopAt: 34, lostFrom: 34, flushAtStop: true},
		{name: "crash", checkpointAt: 20, stopAt: 36, lostFrom: 33},
		{name: "crash_before_first_checkpoint_of_event", checkpointAt: 10, stopAt: 35, lostFrom: 35},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			first := e.engine(t, nil)
			for i, b := range bs[:tc.stopAt] {
				if i >= tc.lostFrom {
					if err := e.ts.WritePoints(t.Context(), b); err != nil {
						t.Fatal(err)
					}
				} else {
					e.feed(t, first, b)
				}
				if i == tc.checkpointAt {
					if err := first.Flush(t.Context()); err != nil {
						t.Fatalf("Flush: %v", err)
					}
				}
			}
			if tc.flushAtStop {
				if err := first.Flush(t.Context()); err != nil {
					t.Fatalf("Flush: %v", err)
				}
			}
			second := e.engine(t, nil)
			if err := second.Resume(t.Context()); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			for _, b := range bs[tc.stopAt:] {
				e.feed(t, second, b)
			}
			if d := diffEvents(e.anomalies(t), want); d != "" {
				t.Errorf("events differ from an uninterrupted run (-want +got):\n%s", d)
			}
			if got, want := len(e.outbox(t)), len(ref.outbox(t)); got != want {
				t.Errorf("got %d notifications, want %d", got, want)
			}
		})
	}
}

func TestMaintenanceMutes(t *testing.T) {
	pts := signal{"d1", "temp", 1500, spikeAt(1000, 15)}.points(1)
	spike := telemetry.FromMillis(pts[1000].Time)
	window := func(sc appdb.Scope) appdb.MaintenanceWindow {
		return appdb.MaintenanceWindow{Scope: sc, Start: spike.Add(-time.Minute), End: spike.Add(time.Minute), Reason: "test"}
	}
	tests := []struct {
		name       string
		window     appdb.MaintenanceWindow
		wantEvents int
	}{
		{"device", window(appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"}), 0},
		{"series", window(appdb.Scope{Kind: appdb.ScopeSeries, Target: pts[0].Series.Key()}), 0},
		{"selector", window(appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"device": "d1"}}), 0},
		{"global", window(appdb.Scope{Kind: appdb.ScopeGlobal}), 0},
		{"other_device", window(appdb.Scope{Kind: appdb.ScopeDevice, Target: "d2"}), 1},
		{"before", appdb.MaintenanceWindow{Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"}, Start: spike.Add(-time.Hour), End: spike.Add(-time.Minute)}, 1},
	}
	for _, tc := range tests {
		t.Run("window="+tc.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.db.Maintenance().Create(t.Context(), tc.window); err != nil {
				t.Fatalf("create window: %v", err)
			}
			en := e.engine(t, nil)
			for _, b := range batches(pts, 100) {
				e.feed(t, en, b)
			}
			if got := len(e.anomalies(t)); got != tc.wantEvents {
				t.Errorf("got %d events, want %d", got, tc.wantEvents)
			}
			if got, want := len(e.outbox(t)) > 0, tc.wantEvents > 0; got != want {
				t.Errorf("notifications written: %v, want %v", got, want)
			}
		})
	}
}

// TestRunOverBus runs the engine as the app does: readings written through
// a PublishingWriter reach it over the bus; stopping it checkpoints, and a
// second engine resumes without scoring anything twice.
func TestRunOverBus(t *testing.T) {
	e := newEnv(t)
	b := membus.New(membus.Options{})
	defer b.Close()
	if err := b.Initialize(t.Context(), engine.TopicTelemetry, engine.GroupDetect); err != nil {
		t.Fatal(err)
	}
	w := &engine.PublishingWriter{W: e.ts, Pub: b}
	pts := merge(signal{"d1", "temp", 1200, spikeAt(800, 15)}.points(1), signal{"d2", "temp", 1200, nil}.points(2))

	runEngine := func(feed []telemetry.Point) engine.Stats {
		en := e.engine(t, b, func(c *engine.Config) { c.CheckpointInterval = 50 * time.Millisecond })
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var runErr error
		wg.Go(func() { runErr = en.Run(ctx) })
		for _, bt := range batches(feed, 100) {
			if err := w.WritePoints(t.Context(), bt); err != nil {
				t.Fatalf("WritePoints: %v", err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for en.Stats().Scored < int64(len(feed)) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Fatalf("Run: %v", runErr)
		}
		return en.Stats()
	}
	st := runEngine(pts[:1200])
	if st.Scored != 1200 {
		t.Fatalf("first run scored %d readings, want 1200", st.Scored)
	}
	st = runEngine(pts[1200:])
	// Readings stored while the second engine resumed are scored by its
	// catch-up and then arrive over the bus as well: they count as late,
	// not scored twice.
	if st.Scored != 1200 {
		t.Fatalf("second run: %+v, want 1200 scored", st)
	}
	got := e.anomalies(t)
	if len(got) != 1 || got[0].Device != "d1" || got[0].Ongoing() {
		t.Errorf("got events %+v, want one closed event of d1", got)
	}
	// Run keeps the device registry: both runs' readings, the learned interval.
	first, last := telemetry.FromMillis(t0), telemetry.FromMillis(t0+1199*1000)
	for _, id := range []string{"d1", "d2"} {
		d := e.device(t, id)
		if !d.FirstSeen.Equal(first) || !d.LastSeen.Equal(last) || !near(d.ReportInterval, time.Second) {
			t.Errorf("device %s registered as seen [%v, %v] every %v, want [%v, %v] every 1s",
				id, d.FirstSeen, d.LastSeen, d.ReportInterval, first, last)
		}
	}
}

// TestRecordFailureReplays: when recording a batch's events fails, the
// engine forgets the device's state; the next batch reloads it from the
// checkpoint and re-scores the stored readings, so the events are those of
// a run without the failure.
func TestRecordFailureReplays(t *testing.T) {
	pts := signal{"d1", "temp", 1500, spikeAt(1000, 15)}.points(1)
	bs := batches(pts, 100)
	ref := newEnv(t)
	en := ref.engine(t, nil)
	for _, b := range bs {
		ref.feed(t, en, b)
	}
	want := ref.anomalies(t)
	if len(want) != 1 {
		t.Fatalf("reference run: %d events, want 1", len(want))
	}

	e := newEnv(t)
	en = e.engine(t, nil)
	for i, b := range bs {
		if i == 10 { // the batch with the spike: its event cannot be recorded
			if err := e.ts.WritePoints(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := en.Process(ctx, b); err == nil {
				t.Fatal("Process with a cancelled context recorded its event, want an error")
			}
			continue
		}
		e.feed(t, en, b)
		if i == 5 {
			if err := en.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := diffEvents(e.anomalies(t), want); d != "" {
		t.Errorf("events differ from a run without failure (-want +got):\n%s", d)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	en, err := engine.New(e.ts, e.db, nil, engine.Options{Config: engine.DefaultConfig(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	pts := signal{"d1", "temp", 1200, spikeAt(900, 15)}.points(1)
	for _, b := range batches(pts, 100) {
		e.feed(t, en, b)
	}
	e.feed(t, en, pts[:10]) // redelivered: late
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"vigil_detect_readings_total,result=scored": 1200,
		"vigil_detect_readings_total,result=late":   10,
		"vigil_detect_events_total,action=open":     1,
		"vigil_detect_events_total,action=escalate": 0,
		"vigil_detect_events_total,action=close":    1,
		"vigil_detect_series":                       1,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metrics (-want +got):\n%s", d)
	}
}
