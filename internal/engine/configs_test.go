package engine_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/cache/localcache"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// TestModelInitialState trains and promotes a model of a series from its
// history; live readings of the series are then scored from the model's
// state: a spike right after the start is flagged (a cold detector is still
// warming up) and the event names the model version.
func TestModelInitialState(t *testing.T) {
	const history, live, at = 2000, 60, 2005
	pts := signal{"d1", "temp", history + live, spikeAt(at, 15)}.points(1)
	key := pts[0].Series.Key()
	for _, withModel := range []bool{true, false} {
		t.Run("model="+map[bool]string{true: "promoted", false: "none"}[withModel], func(t *testing.T) {
			e := newEnv(t)
			if err := e.ts.WritePoints(t.Context(), pts[:history]); err != nil {
				t.Fatal(err)
			}
			opts := engine.Options{Config: engine.DefaultConfig()}
			if withModel {
				reg := newRegistry(t, e)
				m, err := reg.Train(t.Context(), models.SeriesScope(key), timeseries.Range{Start: pts[0].Time, End: pts[history-1].Time + 1})
				if err != nil {
					t.Fatalf("Train: %v", err)
				}
				if _, err := reg.Promote(t.Context(), m.Name, m.Version); err != nil {
					t.Fatalf("Promote: %v", err)
				}
				opts.Models = reg
			}
			en, err := engine.New(e.ts, e.db, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches(pts[history:], 10) {
				e.feed(t, en, b)
			}
			got := e.anomalies(t)
			if !withModel {
				if len(got) != 0 {
					t.Errorf("cold detector: got %d events, want 0 (still warming up): %+v", len(got), got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d events, want 1 (the spike): %+v", len(got), got)
			}
			if want := telemetry.FromMillis(pts[at].Time); !got[0].Start.Equal(want) {
				t.Errorf("event starts %v, want the spike at %v", got[0].Start, want)
			}
			if want := "series:" + key + "@1"; got[0].ModelVersion != want {
				t.Errorf("event ModelVersion %q, want %q", got[0].ModelVersion, want)
			}
			// The model version survives a checkpoint and restart.
			if err := en.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			en2, err := engine.New(e.ts, e.db, nil, engine.Options{Config: engine.DefaultConfig()})
			if err != nil {
				t.Fatal(err)
			}
			if err := en2.Resume(t.Context()); err != nil {
				t.Fatal(err)
			}
			more := signal{"d1", "temp", history + live + 20, spikeAt(history+live+10, 30)}.points(1)[history+live:]
			e.feed(t, en2, more)
			for _, a := range e.anomalies(t) {
				if want := "series:" + key + "@1"; a.ModelVersion != want {
					t.Errorf("after restart: event %s ModelVersion %q, want %q", a.ID, a.ModelVersion, want)
				}
			}
		})
	}
}

func newRegistry(t *testing.T, e *env) *models.Registry {
	t.Helper()
	dir := t.TempDir()
	obj, err := objects.Open(t.Context(), "file://"+filepath.ToSlash(filepath.Join(dir, "objects")))
	if err != nil {
		t.Fatalf("open objects: %v", err)
	}
	t.Cleanup(func() { obj.Close() })
	c, err := localcache.New(localcache.Options{})
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	reg, err := models.New(e.ts, e.db.Models(), obj, c, models.Options{Code: "test"})
	if err != nil {
		t.Fatalf("models.New: %v", err)
	}
	return reg
}

// TestDetectorConfigs applies detector configurations from the real
// application database: the most specific covering a series wins, params
// override the defaults, enabled false turns detection off, and a config
// with an unknown param is logged and ignored.
func TestDetectorConfigs(t *testing.T) {
	const n, at = 2000, 1000
	global := appdb.Scope{Kind: appdb.ScopeGlobal}
	device := appdb.Scope{Kind: appdb.ScopeDevice, Target: "d1"}
	selector := appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"device": "d1"}}
	series := appdb.Scope{Kind: appdb.ScopeSeries, Target: telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}}, "temp").Key()}
	type cfg struct {
		id      string
		scope   appdb.Scope
		params  string
		enabled bool
	}
	tests := []struct {
		name       string
		configs    []cfg
		wantEvents int
		wantScored int64
		wantLog    []string // in the log
	}{
		{"none", nil, 1, n, nil},
		{"global_warmup_override", []cfg{{"g", global, `{"warmup": 1500}`, true}}, 0, n, nil},
		{"device_disabled", []cfg{{"d", device, ``, false}}, 0, 0, nil},
		{"series_beats_global", []cfg{{"g", global, ``, false}, {"s", series, `{"threshold": 0.5}`, true}}, 1, n, nil},
		{"device_beats_selector", []cfg{{"sel", selector, ``, false}, {"d", device, `{}`, true}}, 1, n, nil},
		{"selector_beats_global", []cfg{{"g", global, ``, true}, {"sel", selector, ``, false}}, 0, 0, nil},
		{"unknown_field_ignored", []cfg{{"cfg-bad", global, `{"thresh": 0.9}`, false}}, 1, n, []string{"cfg-bad", `unknown field \"thresh\"`}},
		{"invalid_value_ignored", []cfg{{"cfg-inv", device, `{"warmup": 1}`, false}}, 1, n, []string{"cfg-inv", "warmup"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for _, c := range tc.configs {
				dc := appdb.DetectorConfig{ID: c.id, Detector: engine.DetectorEnsemble, Scope: c.scope, Enabled: c.enabled}
				if c.params != "" {
					dc.Params = json.RawMessage(c.params)
				}
				if _, err := e.db.Detectors().Create(t.Context(), dc); err != nil {
					t.Fatalf("create detector config %s: %v", c.id, err)
				}
			}
			var logs bytes.Buffer
			en, err := engine.New(e.ts, e.db, nil, engine.Options{Config: engine.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches(signal{"d1", "temp", n, spikeAt(at, 15)}.points(1), 100) {
				e.feed(t, en, b)
			}
			if got := e.anomalies(t); len(got) != tc.wantEvents {
				t.Errorf("got %d events, want %d: %+v", len(got), tc.wantEvents, got)
			}
			if st := en.Stats(); st.Scored != tc.wantScored {
				t.Errorf("scored %d readings, want %d", st.Scored, tc.wantScored)
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log %q does not mention %q", logs.String(), w)
				}
			}
		})
	}
}

// TestDetectorConfigRefresh: a configuration created while the engine runs
// applies after RefreshConfigs, to new series and running ones alike.
func TestDetectorConfigRefresh(t *testing.T) {
	e := newEnv(t)
	en := e.engine(t, nil)
	a := signal{"d1", "temp", 100, nil}.points(1)
	b := signal{"d2", "temp", 100, nil}.points(2)
	e.feed(t, en, append(a[:50:50], b[:50]...))
	for _, id := range []string{"d1", "d2"} {
		_, err := e.db.Detectors().Create(t.Context(), appdb.DetectorConfig{
			Detector: engine.DetectorEnsemble, Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: id},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := signal{"d3", "temp", 100, nil}.points(3)
	e.feed(t, en, c[:50])
	if got := en.Stats().Scored; got != 150 {
		t.Fatalf("before refresh: scored %d, want 150", got)
	}
	if err := en.RefreshConfigs(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The running detector of d1/temp stops (its device's config disables
	// it), d3/temp goes on; the new series d1/hum, covered by the
	// disabling config, is not scored.
	d1hum := signal{"d1", "hum", 50, nil}.points(4)
	e.feed(t, en, append(append(a[50:], c[50:]...), d1hum...))
	if got := en.Stats().Scored; got != 200 {
		t.Errorf("after refresh: scored %d, want 200 (d1 off, d3 goes on, the new series d1/hum is off)", got)
	}
}
