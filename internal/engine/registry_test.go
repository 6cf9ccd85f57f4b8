package engine_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// steady returns n readings of device's field every step from start (Unix
// ms), normal noise around 50.
func steady(device, field string, n int, start int64, step time.Duration, seed uint64) []telemetry.Point {
	rng := rand.New(rand.NewPCG(seed, 11))
	ser := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: device}}, field)
	pts := make([]telemetry.Point, n)
	for i := range pts {
		pts[i] = telemetry.Point{Series: ser, Time: start + int64(i)*step.Milliseconds(), Value: 50 + rng.NormFloat64()}
	}
	return pts
}

func (e *env) device(t *testing.T, id string) appdb.Device {
	t.Helper()
	d, err := e.db.Devices().Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get device %q: %v", id, err)
	}
	return d
}

func flush(t *testing.T, en *engine.Engine) {
	t.Helper()
	if err := en.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// near reports whether got is within 1% of want.
func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= 0.01*float64(want)
}

// TestDeviceRegistry: the engine records each device's first and last
// reading times and learned reporting interval in the registry at its
// checkpoints, keeps the user's fields, rewrites only devices that got
// readings, and rewrites the interval only when it changed materially.
func TestDeviceRegistry(t *testing.T) {
	e := newEnv(t)
	user, err := e.db.Devices().Create(t.Context(), appdb.Device{ID: "d1", Name: "Boiler", Labels: map[string]string{"site": "north"}})
	if err != nil {
		t.Fatalf("Create d1: %v", err)
	}
	en := e.engine(t, nil)

	// d1: two series every second; d2: one series every 2s.
	d1 := merge(steady("d1", "temp", 300, t0, time.Second, 1), steady("d1", "hum", 300, t0, time.Second, 2))
	d2 := steady("d2", "temp", 200, t0+500, 2*time.Second, 3)
	for _, b := range batches(merge(d1, d2), 50) {
		e.feed(t, en, b)
	}
	if got := e.device(t, "d1"); got.ReportInterval != 0 || !got.LastSeen.IsZero() {
		t.Fatalf("d1 before the checkpoint: %+v, want not written yet (no interval, no last seen)", got)
	}
	flush(t, en)

	check := func(id string, first, last int64, interval time.Duration) appdb.Device {
		t.Helper()
		got := e.device(t, id)
		if want := telemetry.FromMillis(first); !got.FirstSeen.Equal(want) {
			t.Errorf("device %s: first seen %v, want %v", id, got.FirstSeen, want)
		}
		if want := telemetry.FromMillis(last); !got.LastSeen.Equal(want) {
			t.Errorf("device %s: last seen %v, want %v", id, got.LastSeen, want)
		}
		if !near(got.ReportInterval, interval) {
			t.Errorf("device %s: report interval %v, want %v ± 1%%", id, got.ReportInterval, interval)
		}
		return got
	}
	g1 := check("d1", t0, d1[len(d1)-1].Time, time.Second)
	g2 := check("d2", d2[0].Time, d2[len(d2)-1].Time, 2*time.Second)
	if g1.Name != user.Name || !cmp.Equal(g1.Labels, user.Labels) || !g1.CreatedAt.Equal(user.CreatedAt) {
		t.Errorf("d1 after the engine's write: name %q, labels %v, created %v; want the user's %q, %v, %v",
			g1.Name, g1.Labels, g1.CreatedAt, user.Name, user.Labels, user.CreatedAt)
	}
	if g2.Name != "" || g2.Labels != nil {
		t.Errorf("d2 created by the engine with name %q, labels %v; want none", g2.Name, g2.Labels)
	}

	t.Run("no_readings_no_write", func(t *testing.T) {
		flush(t, en)
		for _, want := range []appdb.Device{g1, g2} {
			if got := e.device(t, want.ID); !cmp.Equal(got, want) {
				t.Errorf("device %s rewritten by a checkpoint without readings: %s", want.ID, cmp.Diff(want, got))
			}
		}
	})

	t.Run("steady_interval_not_rewritten", func(t *testing.T) {
		more := merge(steady("d1", "temp", 100, t0+300_000, time.Second, 4), steady("d1", "hum", 100, t0+300_000, time.Second, 5))
		for _, b := range batches(more, 50) {
			e.feed(t, en, b)
		}
		flush(t, en)
		got := check("d1", t0, more[len(more)-1].Time, time.Second)
		if got.ReportInterval != g1.ReportInterval {
			t.Errorf("d1 report interval rewritten from %v to %v, want kept (change under 10%%)", g1.ReportInterval, got.ReportInterval)
		}
		if got.Version != g1.Version+1 {
			t.Errorf("d1 version %d after one checkpoint with readings, want %d (last seen only)", got.Version, g1.Version+1)
		}
		if now := e.device(t, "d2"); !cmp.Equal(now, g2) {
			t.Errorf("d2 rewritten without readings: %s", cmp.Diff(g2, now))
		}
		g1 = got
	})

	t.Run("interval_change_written", func(t *testing.T) {
		// The user renames d1 meanwhile: the engine keeps the new name.
		g1.Name = "Boiler 2"
		renamed, err := e.db.Devices().Update(t.Context(), g1)
		if err != nil {
			t.Fatalf("Update d1: %v", err)
		}
		from := t0 + 400_000 + 5000
		slow := merge(steady("d1", "temp", 300, from, 5*time.Second, 6), steady("d1", "hum", 300, from, 5*time.Second, 7))
		for _, b := range batches(slow, 50) {
			e.feed(t, en, b)
		}
		flush(t, en)
		got := e.device(t, "d1")
		if got.ReportInterval < 4500*time.Millisecond || got.ReportInterval > 5500*time.Millisecond {
			t.Errorf("d1 report interval %v after readings every 5s, want 5s ± 10%%", got.ReportInterval)
		}
		if want := telemetry.FromMillis(slow[len(slow)-1].Time); !got.LastSeen.Equal(want) || !got.FirstSeen.Equal(telemetry.FromMillis(t0)) {
			t.Errorf("d1 seen [%v, %v], want [%v, %v]", got.FirstSeen, got.LastSeen, telemetry.FromMillis(t0), want)
		}
		if got.Name != renamed.Name || !cmp.Equal(got.Labels, renamed.Labels) {
			t.Errorf("d1 name %q, labels %v; want the user's %q, %v", got.Name, got.Labels, renamed.Name, renamed.Labels)
		}
	})
}

// TestDeviceRegistryEvicted: what an evicted device learned is written at
// the next checkpoint, and a late reading before the first one widens
// first seen.
func TestDeviceRegistryEvicted(t *testing.T) {
	e := newEnv(t)
	en := e.engine(t, nil, func(c *engine.Config) { c.IdleTimeout = time.Nanosecond })
	pts := steady("d1", "temp", 50, t0, 10*time.Second, 1)
	e.feed(t, en, pts[1:])
	en.Evict(t.Context())
	if st := en.Stats(); st.Devices != 0 {
		t.Fatalf("%d devices in memory after eviction, want 0", st.Devices)
	}
	flush(t, en)
	got := e.device(t, "d1")
	if !got.FirstSeen.Equal(telemetry.FromMillis(pts[1].Time)) || !got.LastSeen.Equal(telemetry.FromMillis(pts[len(pts)-1].Time)) {
		t.Errorf("d1 seen [%v, %v], want [%v, %v]", got.FirstSeen, got.LastSeen,
			telemetry.FromMillis(pts[1].Time), telemetry.FromMillis(pts[len(pts)-1].Time))
	}
	if !near(got.ReportInterval, 10*time.Second) {
		t.Errorf("d1 report interval %v, want 10s ± 1%%", got.ReportInterval)
	}

	e.feed(t, en, pts[:1]) // late: stored, not scored, but seen
	flush(t, en)
	if got := e.device(t, "d1"); !got.FirstSeen.Equal(telemetry.FromMillis(pts[0].Time)) {
		t.Errorf("d1 first seen %v after a late reading at %v, want the late reading's time",
			got.FirstSeen, telemetry.FromMillis(pts[0].Time))
	}
}
