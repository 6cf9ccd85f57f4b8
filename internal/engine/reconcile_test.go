package engine_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// spikes adds size at each of the indexes at.
func spikes(size float64, at ...int) func(int) float64 {
	return func(i int) float64 {
		for _, a := range at {
			if i == a {
				return size
			}
		}
		return 0
	}
}

// putConfig creates the detector configuration c, or updates it when it
// exists.
func (e *env) putConfig(t *testing.T, c appdb.DetectorConfig) {
	t.Helper()
	cur, err := e.db.Detectors().Get(t.Context(), c.ID)
	switch {
	case errors.Is(err, appdb.ErrNotFound):
		_, err = e.db.Detectors().Create(t.Context(), c)
	case err == nil:
		c.Version = cur.Version
		_, err = e.db.Detectors().Update(t.Context(), c)
	}
	if err != nil {
		t.Fatalf("put detector config %s: %v", c.ID, err)
	}
}

func refresh(t *testing.T, en *engine.Engine) {
	t.Helper()
	if err := en.RefreshConfigs(t.Context()); err != nil {
		t.Fatalf("RefreshConfigs: %v", err)
	}
}

func feedAll(t *testing.T, e *env, en *engine.Engine, pts []telemetry.Point) {
	t.Helper()
	for _, b := range batches(pts, 100) {
		e.feed(t, en, b)
	}
}

// checkpointMeta reads the JSON part of checkpoint key (see the
// checkpoint format in the package documentation); ok is false when the
// checkpoint does not exist.
func (e *env) checkpointMeta(t *testing.T, key string) (meta map[string]json.RawMessage, ok bool) {
	t.Helper()
	cp, err := e.db.Checkpoints().Get(t.Context(), key)
	if errors.Is(err, appdb.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get checkpoint %q: %v", key, err)
	}
	st := cp.State
	if len(st) < 8 || string(st[:4]) != "VGE1" {
		t.Fatalf("checkpoint %q: bad header", key)
	}
	n := int(binary.LittleEndian.Uint32(st[4:8]))
	if err := json.Unmarshal(st[8+n:], &meta); err != nil {
		t.Fatalf("checkpoint %q: %v", key, err)
	}
	return meta, true
}

// TestConfigChangeRunningSeries disables the running detector of a
// series: its open event closes (at its last hot reading, announced) and
// its later readings, a spike among them, are not scored; enabled again,
// it is scored by a cold detector (a spike during its warm-up is not
// flagged, one after it is).
func TestConfigChangeRunningSeries(t *testing.T) {
	const openAt, offSpike, coldSpike, warmSpike = 595, 900, 1250, 1800
	e := newEnv(t)
	en := e.engine(t, nil)
	pts := signal{"d1", "temp", 2200, spikes(15, openAt, offSpike, coldSpike, warmSpike)}.points(1)
	key := pts[0].Series.Key()
	cfg := appdb.DetectorConfig{ID: "s", Detector: engine.DetectorEnsemble, Scope: appdb.Scope{Kind: appdb.ScopeSeries, Target: key}}

	feedAll(t, e, en, pts[:600])
	got := e.anomalies(t)
	if len(got) != 1 || !got[0].End.IsZero() {
		t.Fatalf("before the change: got %+v, want one open event", got)
	}
	ev := got[0]

	e.putConfig(t, cfg) // Enabled false
	refresh(t, en)
	feedAll(t, e, en, pts[600:1200])
	if st := en.Stats(); st.Scored != 600 {
		t.Errorf("disabled: scored %d readings, want 600 (none after the change)", st.Scored)
	}
	got = e.anomalies(t)
	if len(got) != 1 {
		t.Fatalf("disabled: got %d events, want 1 (the spike at %d not scored): %+v", len(got), offSpike, got)
	}
	if got[0].ID != ev.ID || got[0].End.IsZero() || got[0].End.Before(ev.Start) {
		t.Errorf("disabled: event %+v, want %s closed at its last hot reading", got[0], ev.ID)
	}
	closed := false
	for _, n := range e.outbox(t) {
		if n.Anomaly.ID == ev.ID && n.Action == engine.ActionClose {
			closed = true
		}
	}
	if !closed {
		t.Errorf("disabled: no close announced for event %s", ev.ID)
	}

	cfg.Enabled = true
	e.putConfig(t, cfg)
	refresh(t, en)
	feedAll(t, e, en, pts[1200:])
	if st := en.Stats(); st.Scored != 1600 {
		t.Errorf("enabled again: scored %d readings, want 1600", st.Scored)
	}
	got = e.anomalies(t)
	if len(got) != 2 {
		t.Fatalf("enabled again: got %d events, want 2 (the spike at %d in the warm-up of the new detector not flagged, the one at %d flagged): %+v", len(got), coldSpike, warmSpike, got)
	}
	for _, a := range got {
		if a.ID == ev.ID {
			continue
		}
		if want := telemetry.FromMillis(pts[warmSpike].Time); !a.Start.Equal(want) {
			t.Errorf("enabled again: event starts %v, want %v (spike %d)", a.Start, want, warmSpike)
		}
	}
}

// TestConfigChangeParams changes the params of a running series: a new
// detector with the new parameters scores the readings after the change.
// A spike 500 readings after the change is flagged by the running
// detector (no change, or params equal to the defaults) and by a new one
// warming up on 200 readings, not by a new one warming up on 1000.
func TestConfigChangeParams(t *testing.T) {
	const change, spike = 600, 1100
	tests := []struct {
		name       string
		params     string // "": no config
		wantEvents int
		wantWarmup string // in the checkpoint's "config"; "": none (the engine's)
	}{
		{"no_config", "", 1, ""},
		{"defaults", `{}`, 1, ""},
		{"warmup_200", `{"warmup": 200}`, 1, "200"},
		{"warmup_1000", `{"warmup": 1000}`, 0, "1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			en := e.engine(t, nil)
			pts := signal{"d1", "temp", 1400, spikes(15, spike)}.points(1)
			key := pts[0].Series.Key()
			feedAll(t, e, en, pts[:change])
			if tc.params != "" {
				e.putConfig(t, appdb.DetectorConfig{ID: "s", Detector: engine.DetectorEnsemble, Enabled: true,
					Scope: appdb.Scope{Kind: appdb.ScopeSeries, Target: key}, Params: json.RawMessage(tc.params)})
			}
			refresh(t, en)
			feedAll(t, e, en, pts[change:])
			if got := e.anomalies(t); len(got) != tc.wantEvents {
				t.Errorf("params %s: got %d events, want %d: %+v", tc.params, len(got), tc.wantEvents, got)
			}
			if err := en.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			meta, ok := e.checkpointMeta(t, "det:2:d1:"+key)
			if !ok {
				t.Fatalf("no checkpoint of %s", key)
			}
			var c struct {
				Warmup json.RawMessage `json:"warmup"`
			}
			if raw := meta["config"]; raw != nil {
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
			}
			if string(c.Warmup) != tc.wantWarmup {
				t.Errorf("params %s: checkpointed warmup %q, want %q", tc.params, c.Warmup, tc.wantWarmup)
			}
		})
	}
}

// TestConfigDisablesCheckpointed restarts with a checkpoint whose series
// (with an open event) a configuration created meanwhile disables: the
// event closes, the readings after the restart are not scored, and the
// checkpoint is deleted.
func TestConfigDisablesCheckpointed(t *testing.T) {
	e := newEnv(t)
	en := e.engine(t, nil)
	pts := signal{"d1", "temp", 1200, spikes(15, 595, 900)}.points(1)
	feedAll(t, e, en, pts[:600])
	if err := en.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.anomalies(t); len(got) != 1 || !got[0].End.IsZero() {
		t.Fatalf("before restart: got %+v, want one open event", got)
	}
	e.putConfig(t, appdb.DetectorConfig{ID: "d", Detector: engine.DetectorEnsemble, Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"}})

	en2 := e.engine(t, nil)
	if err := en2.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	feedAll(t, e, en2, pts[600:])
	if st := en2.Stats(); st.Scored != 0 {
		t.Errorf("after restart: scored %d readings, want 0 (disabled)", st.Scored)
	}
	got := e.anomalies(t)
	if len(got) != 1 || got[0].End.IsZero() {
		t.Errorf("after restart: got %+v, want the one event, closed", got)
	}
	if err := en2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.checkpointMeta(t, "det:2:d1:"+pts[0].Series.Key()); ok {
		t.Errorf("checkpoint of the disabled series still stored")
	}
}

// TestConfigChangeDevice applies DetectorDevice configurations to a
// running device detector: disabled, its checkpoint goes; enabled again,
// it comes back; params changed, its checkpoint records them.
func TestConfigChangeDevice(t *testing.T) {
	const devKey = "det:2:d1:"
	e := newEnv(t)
	en := e.engine(t, nil)
	pts := merge(signal{"d1", "temp", 1000, nil}.points(1), signal{"d1", "hum", 1000, nil}.points(2))
	cfg := appdb.DetectorConfig{ID: "dev", Detector: engine.DetectorDevice, Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"}}
	steps := []struct {
		name       string
		enabled    bool
		params     string
		want       bool   // a device checkpoint
		wantWarmup string // in its "device_config"; "": none
	}{
		{"running", true, "", true, ""},
		{"disabled", false, "", false, ""},
		{"enabled", true, "", true, ""},
		{"params", true, `{"warmup": 300}`, true, "300"},
	}
	for i, st := range steps {
		if i > 0 {
			cfg.Enabled, cfg.Params = st.enabled, nil
			if st.params != "" {
				cfg.Params = json.RawMessage(st.params)
			}
			e.putConfig(t, cfg)
			refresh(t, en)
		}
		feedAll(t, e, en, pts[i*500:(i+1)*500])
		if err := en.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		meta, ok := e.checkpointMeta(t, devKey)
		if ok != st.want {
			t.Fatalf("%s: device checkpoint stored %v, want %v", st.name, ok, st.want)
		}
		var c struct {
			Warmup json.RawMessage `json:"warmup"`
		}
		if raw := meta["device_config"]; raw != nil {
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
		}
		if string(c.Warmup) != st.wantWarmup {
			t.Errorf("%s: checkpointed device warmup %q, want %q", st.name, c.Warmup, st.wantWarmup)
		}
	}
}
