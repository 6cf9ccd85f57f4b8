package engine_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a real time-series store and a real application database in a
// temporary directory.
type env struct {
	ts *embedts.Store
	db *sqlitedb.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	ts, err := embedts.Open(dir+"/tsdb", embedts.Options{OutOfOrderWindow: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatalf("embedts.Open: %v", err)
	}
	t.Cleanup(func() { ts.Close() })
	db, err := sqlitedb.Open(t.Context(), dir+"/app.db", sqlitedb.Options{})
	if err != nil {
		t.Fatalf("sqlitedb.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{ts: ts, db: db}
}

func (e *env) engine(t *testing.T, sub bus.Subscriber, mod ...func(*engine.Config)) *engine.Engine {
	t.Helper()
	cfg := engine.DefaultConfig()
	for _, m := range mod {
		m(&cfg)
	}
	en, err := engine.New(e.ts, e.db, sub, engine.Options{Config: cfg})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	return en
}

// write stores pts and hands them to the engine, as ingest and the bus do.
func (e *env) feed(t *testing.T, en *engine.Engine, pts []telemetry.Point) {
	t.Helper()
	if err := e.ts.WritePoints(t.Context(), pts); err != nil {
		t.Fatalf("WritePoints: %v", err)
	}
	if err := en.Process(t.Context(), pts); err != nil {
		t.Fatalf("Process: %v", err)
	}
}

func (e *env) anomalies(t *testing.T) []appdb.Anomaly {
	t.Helper()
	var all []appdb.Anomaly
	f := appdb.AnomalyFilter{Page: appdb.Page{Limit: appdb.MaxLimit}}
	for {
		as, next, err := e.db.Anomalies().Find(context.WithoutCancel(t.Context()), f)
		if err != nil {
			t.Fatalf("Find anomalies: %v", err)
		}
		all = append(all, as...)
		if next == "" {
			return all
		}
		f.Cursor = next
	}
}

func (e *env) outbox(t *testing.T) []engine.Notification {
	t.Helper()
	ms, _, err := e.db.Outbox().Find(t.Context(), appdb.OutboxFilter{Topic: engine.TopicAnomalies, Page: appdb.Page{Limit: appdb.MaxLimit}})
	if err != nil {
		t.Fatalf("Find outbox: %v", err)
	}
	out := make([]engine.Notification, len(ms))
	for i, m := range ms {
		if err := jsonUnmarshal(m.Payload, &out[i]); err != nil {
			t.Fatalf("outbox payload %s: %v", m.Payload, err)
		}
	}
	return out
}

// signal describes a generated series: n readings every second from t0,
// normal noise around 50 plus fault(i).
type signal struct {
	device, field string
	n             int
	fault         func(i int) float64
}

var t0 = time.Now().Add(-2 * time.Hour).Truncate(time.Second).UnixMilli()

func (s signal) points(seed uint64) []telemetry.Point {
	rng := rand.New(rand.NewPCG(seed, 7))
	ser := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: s.device}}, s.field)
	pts := make([]telemetry.Point, s.n)
	for i := range pts {
		v := 50 + rng.NormFloat64()
		if s.fault != nil {
			v += s.fault(i)
		}
		pts[i] = telemetry.Point{Series: ser, Time: t0 + int64(i)*1000, Value: v}
	}
	return pts
}

func spikeAt(at int, size float64) func(int) float64 {
	return func(i int) float64 {
		if i == at {
			return size
		}
		return 0
	}
}

func shiftAt(at int, size float64) func(int) float64 {
	return func(i int) float64 {
		if i >= at {
			return size
		}
		return 0
	}
}

// merge interleaves several series' points in time order.
func merge(sets ...[]telemetry.Point) []telemetry.Point {
	var all []telemetry.Point
	for _, s := range sets {
		all = append(all, s...)
	}
	slices.SortStableFunc(all, func(a, b telemetry.Point) int { return int(a.Time - b.Time) })
	return all
}

func batches(pts []telemetry.Point, size int) [][]telemetry.Point {
	var out [][]telemetry.Point
	for len(pts) > 0 {
		n := min(size, len(pts))
		out = append(out, pts[:n])
		pts = pts[n:]
	}
	return out
}

// eventCmp compares anomalies on what detection decides.
var eventCmp = cmpopts.IgnoreFields(appdb.Anomaly{}, "CreatedAt", "UpdatedAt", "Version")

func diffEvents(got, want []appdb.Anomaly) string { return cmp.Diff(want, got, eventCmp) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
