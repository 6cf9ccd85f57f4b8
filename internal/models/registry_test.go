package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/cache/localcache"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test data: readings every minute from t0; "now" is a day after the last.
var (
	t0   = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	step = time.Minute.Milliseconds()
	now  = time.UnixMilli(t0).Add(20 * 24 * time.Hour)
)

// countingObjects is the real object store, counting Get calls.
type countingObjects struct {
	*objects.Store
	gets atomic.Int64
}

func (c *countingObjects) Get(ctx context.Context, key string) ([]byte, objects.Info, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

// env is a set of real stores under one directory.
type env struct {
	dir   string
	ts    *embedts.Store
	db    *sqlitedb.Store
	obj   *countingObjects
	cache *localcache.Cache
	clock *atomic.Int64 // Unix ms of the cache clock
	reg   *models.Registry
}

func openEnv(t testing.TB, dir string) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{dir: dir, clock: new(atomic.Int64)}
	e.clock.Store(now.UnixMilli())
	clock := func() time.Time { return time.UnixMilli(e.clock.Load()) }
	var err error
	e.ts, err = embedts.Open(filepath.Join(dir, "tsdb"), embedts.Options{OutOfOrderWindow: 365 * 24 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("open tsdb: %v", err)
	}
	e.db, err = sqlitedb.Open(ctx, filepath.Join(dir, "vigil.db"), sqlitedb.Options{})
	if err != nil {
		t.Fatalf("open appdb: %v", err)
	}
	st, err := objects.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, "objects")))
	if err != nil {
		t.Fatalf("open objects: %v", err)
	}
	e.obj = &countingObjects{Store: st}
	e.cache, err = localcache.New(localcache.Options{Now: clock})
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	e.reg, err = models.New(e.ts, e.db.Models(), e.obj, e.cache, models.Options{Code: "test", Window: 6 * time.Hour})
	if err != nil {
		t.Fatalf("new registry: %v", err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.cache.Close()
	e.obj.Close()
	e.db.Close()
	e.ts.Close()
}

// signal returns n readings of a daily sine with noise, seed-determined,
// starting at from; fault, when not nil, is added to reading i.
func signal(seed uint64, from int64, n int, fault func(i int) float64) []timeseries.Sample {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]timeseries.Sample, n)
	for i := range out {
		t := from + int64(i)*step
		v := 20 + 5*math.Sin(2*math.Pi*float64(t%86400000)/86400000) + rng.NormFloat64()*0.3
		if fault != nil {
			v += fault(i)
		}
		out[i] = timeseries.Sample{Time: t, Value: v}
	}
	return out
}

func write(t testing.TB, ts timeseries.Repository, key string, samples []timeseries.Sample) {
	t.Helper()
	s, err := telemetry.ParseSeriesKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pts := make([]telemetry.Point, len(samples))
	for i, x := range samples {
		pts[i] = telemetry.Point{Series: s, Time: x.Time, Value: x.Value}
	}
	if err := ts.WritePoints(t.Context(), pts); err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
}

const (
	keyTemp  = "machine,device=m1 temp"
	keyHum   = "machine,device=m1 hum"
	keyOther = "machine,device=m2 temp"
	nTrain   = 3000
)

func trainRange() timeseries.Range { return timeseries.Range{Start: t0, End: t0 + nTrain*step} }

func TestTrainStoresArtifactAndMetadata(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	write(t, e.ts, keyTemp, signal(1, t0, nTrain, nil))
	write(t, e.ts, keyOther, signal(2, t0, nTrain, nil))

	m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	if m.Name != "series:"+keyTemp || m.Version != 1 || m.Stage != models.StageCandidate {
		t.Errorf("Train = %s@%d %s, want series:%s@1 candidate", m.Name, m.Version, m.Stage, keyTemp)
	}
	if m.ArtifactKey != models.ArtifactKey(m.Name, 1) {
		t.Errorf("ArtifactKey = %q, want %q", m.ArtifactKey, models.ArtifactKey(m.Name, 1))
	}
	tr := m.Training
	if tr.Readings != nTrain || tr.Series != 1 || tr.Warm != 1 || tr.First != t0 || tr.Last != t0+(nTrain-1)*step ||
		tr.Format != models.FormatVersion || tr.Code != "test" || tr.Size == 0 || tr.Config != detect.DefaultConfig() {
		t.Errorf("Training = %+v, want %d readings of 1 warm series from %d to %d, format %d, code test, default config",
			tr, nTrain, t0, t0+(nTrain-1)*step, models.FormatVersion)
	}

	// The artifact in the object store has the recorded checksum.
	b, _, err := e.obj.Store.Get(ctx, m.ArtifactKey)
	if err != nil {
		t.Fatalf("get artifact: %v", err)
	}
	sum := sha256.Sum256(b)
	if want := "sha256:" + hex.EncodeToString(sum[:]); m.Checksum != want || len(b) != tr.Size {
		t.Errorf("Checksum = %s size %d, artifact has %s size %d", m.Checksum, tr.Size, want, len(b))
	}
	// The metadata in appdb says the same.
	dm, err := e.db.Models().Get(ctx, m.Name, 1)
	if err != nil {
		t.Fatalf("appdb get: %v", err)
	}
	var got models.Training
	if err := json.Unmarshal(dm.Training, &got); err != nil {
		t.Fatalf("training JSON: %v", err)
	}
	if dm.Checksum != m.Checksum || dm.ArtifactKey != m.ArtifactKey || dm.Stage != appdb.StageCandidate ||
		!cmp.Equal(dm.Scope, appdb.Scope{Kind: appdb.ScopeSeries, Target: keyTemp}) || dm.Detector != "ensemble" {
		t.Errorf("appdb meta = %+v, want checksum %s key %s candidate series scope", dm, m.Checksum, m.ArtifactKey)
	}
	if diff := cmp.Diff(tr, got); diff != "" {
		t.Errorf("training metadata in appdb (-returned +stored):\n%s", diff)
	}

	// A second training is version 2; an empty range is ErrNoData.
	if m2, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange()); err != nil || m2.Version != 2 {
		t.Errorf("second Train = v%d, %v; want v2", m2.Version, err)
	}
	empty := timeseries.Range{Start: t0 - 10*step, End: t0}
	if _, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), empty); !errors.Is(err, models.ErrNoData) {
		t.Errorf("Train on empty range: %v, want ErrNoData", err)
	}
	if _, err := e.reg.Train(ctx, models.SeriesScope("machine,device=m1 nothing"), trainRange()); !errors.Is(err, models.ErrNoData) {
		t.Errorf("Train of unknown series: %v, want ErrNoData", err)
	}
}

// feedAll feeds samples to a fresh Ensemble, as Train should.
func feedAll(samples []timeseries.Sample) *detect.Ensemble {
	d := detect.NewEnsemble(detect.DefaultConfig())
	for _, s := range samples {
		d.Update(s.Time, s.Value)
	}
	return d
}

func TestLoadedModelScoresLikeTrained(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	hist := signal(3, t0, nTrain, nil)
	write(t, e.ts, keyTemp, hist)
	m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	mod, err := e.reg.Load(ctx, m.Name, m.Version)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	loaded, err := mod.Artifact.Ensemble(keyTemp)
	if err != nil {
		t.Fatalf("Ensemble: %v", err)
	}
	ref := feedAll(hist)
	wantState, _ := ref.MarshalBinary()
	gotState, _ := loaded.MarshalBinary()
	if !cmp.Equal(gotState, wantState) {
		t.Fatalf("loaded state (%d bytes) differs from a detector fed the same history (%d bytes)", len(gotState), len(wantState))
	}
	// Both score the continuation, with a fault, identically.
	next := signal(4, t0+nTrain*step, 600, func(i int) float64 {
		if i >= 300 && i < 340 {
			return 15
		}
		return 0
	})
	anomalies := 0
	for _, s := range next {
		want, got := ref.Update(s.Time, s.Value), loaded.Update(s.Time, s.Value)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("reading at %d: loaded detector differs (-trained +loaded):\n%s", s.Time, diff)
		}
		if got.Anomaly {
			anomalies++
		}
	}
	if anomalies == 0 {
		t.Errorf("no anomaly raised on a +15 fault; the comparison above proves little")
	}
}

func TestTrainDevice(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	temp, hum := signal(5, t0, nTrain, nil), signal(6, t0, nTrain, nil)
	write(t, e.ts, keyTemp, temp)
	write(t, e.ts, keyHum, hum)
	write(t, e.ts, keyOther, signal(7, t0, nTrain, nil))

	m, err := e.reg.Train(ctx, models.DeviceScope("m1"), trainRange())
	if err != nil {
		t.Fatalf("Train device: %v", err)
	}
	if m.Name != "device:m1" || m.Training.Series != 2 || m.Training.Readings != 2*nTrain || m.Training.DeviceRows != nTrain || m.Training.DeviceConfig == nil {
		t.Errorf("Train device = %s, %+v; want device:m1, 2 series, %d readings, %d rows", m.Name, m.Training, 2*nTrain, nTrain)
	}
	mod, err := e.reg.Load(ctx, m.Name, m.Version)
	if err != nil {
		t.Fatal(err)
	}
	a := mod.Artifact
	// Sensors in key order: hum sorts before temp.
	if a.Device == nil || !cmp.Equal(a.Device.Sensors, []string{keyHum, keyTemp}) || !a.Device.Warm {
		t.Fatalf("device state = %+v, want warm sensors [%s %s]", a.Device, keyHum, keyTemp)
	}
	ref := detect.NewDeviceDetector(detect.DefaultDeviceConfig(), []string{keyHum, keyTemp})
	for i := range temp {
		ref.Update(temp[i].Time, []float64{hum[i].Value, temp[i].Value})
	}
	dd, err := a.DeviceDetector()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ref.MarshalBinary()
	got, _ := dd.MarshalBinary()
	if !cmp.Equal(got, want) {
		t.Errorf("device state differs from a detector fed the same rows")
	}
	for _, k := range []string{keyHum, keyTemp} {
		ens, err := a.Ensemble(k)
		if err != nil {
			t.Fatal(err)
		}
		src := temp
		if k == keyHum {
			src = hum
		}
		w, _ := feedAll(src).MarshalBinary()
		g, _ := ens.MarshalBinary()
		if !cmp.Equal(g, w) {
			t.Errorf("series %s state differs from a detector fed its history", k)
		}
	}
	if _, err := a.Ensemble(keyOther); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Ensemble of another device's series: %v, want ErrNotFound", err)
	}
}

func TestTrainEach(t *testing.T) {
	e := openEnv(t, t.TempDir())
	for i, k := range []string{keyTemp, keyHum, keyOther} {
		write(t, e.ts, k, signal(uint64(10+i), t0, 400, nil))
	}
	write(t, e.ts, "other,device=m1 x", signal(13, t0, 400, nil))
	got, err := e.reg.TrainEach(t.Context(), timeseries.Selector{Measurement: "machine"}, trainRange(), models.TrainOptions{})
	if err != nil {
		t.Fatalf("TrainEach: %v", err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
		if m.Training.Readings != 400 {
			t.Errorf("%s: %d readings, want 400", m.Name, m.Training.Readings)
		}
	}
	want := []string{"series:" + keyHum, "series:" + keyTemp, "series:" + keyOther}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("TrainEach names (-want +got):\n%s", diff)
	}
}

func stages(t *testing.T, r *models.Registry, name string) map[int]models.Stage {
	t.Helper()
	vs, err := r.List(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]models.Stage{}
	for _, m := range vs {
		out[m.Version] = m.Stage
	}
	return out
}

func TestLifecycle(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	write(t, e.ts, keyTemp, signal(20, t0, 300, nil))
	name := "series:" + keyTemp
	var metas []models.Meta
	for range 5 {
		m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, m)
	}
	const (
		C = models.StageCandidate
		A = models.StageActive
		X = models.StageArchived
	)
	steps := []struct {
		name    string
		do      func() error
		wantErr error
		want    map[int]models.Stage
	}{
		{"promote 1", func() error { _, err := e.reg.Promote(ctx, name, 1); return err }, nil, map[int]models.Stage{1: A, 2: C, 3: C, 4: C, 5: C}},
		{"rollback without previous", func() error { _, err := e.reg.Rollback(ctx, name); return err }, models.ErrNoPrevious, map[int]models.Stage{1: A, 2: C, 3: C, 4: C, 5: C}},
		{"promote 2", func() error { _, err := e.reg.Promote(ctx, name, 2); return err }, nil, map[int]models.Stage{1: X, 2: A, 3: C, 4: C, 5: C}},
		{"promote 3", func() error { _, err := e.reg.Promote(ctx, name, 3); return err }, nil, map[int]models.Stage{1: X, 2: X, 3: A, 4: C, 5: C}},
		{"rollback to 2", func() error { _, err := e.reg.Rollback(ctx, name); return err }, nil, map[int]models.Stage{1: X, 2: A, 3: X, 4: C, 5: C}},
		{"rollback to 1", func() error { _, err := e.reg.Rollback(ctx, name); return err }, nil, map[int]models.Stage{1: A, 2: X, 3: X, 4: C, 5: C}},
		{"promote missing", func() error { _, err := e.reg.Promote(ctx, name, 9); return err }, models.ErrNotFound, map[int]models.Stage{1: A, 2: X, 3: X, 4: C, 5: C}},
		{"prune keep 0", func() error { _, err := e.reg.Prune(ctx, name, 0); return err }, models.ErrInvalid, map[int]models.Stage{1: A, 2: X, 3: X, 4: C, 5: C}},
		{"prune keep 2 spares active 1", func() error { _, err := e.reg.Prune(ctx, name, 2); return err }, nil, map[int]models.Stage{1: A, 4: C, 5: C}},
		{"promote 5", func() error { _, err := e.reg.Promote(ctx, name, 5); return err }, nil, map[int]models.Stage{1: X, 4: C, 5: A}},
		{"rollback skips candidate 4", func() error { _, err := e.reg.Rollback(ctx, name); return err }, nil, map[int]models.Stage{1: A, 4: C, 5: X}},
		{"prune keep 1", func() error { _, err := e.reg.Prune(ctx, name, 1); return err }, nil, map[int]models.Stage{1: A, 5: X}},
	}
	for _, s := range steps {
		err := s.do()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if diff := cmp.Diff(s.want, stages(t, e.reg, name)); diff != "" {
			t.Fatalf("%s: stages (-want +got):\n%s", s.name, diff)
		}
		act, err := e.reg.Active(ctx, name)
		if err != nil {
			t.Fatalf("%s: Active: %v", s.name, err)
		}
		if s.want[act.Version] != A {
			t.Fatalf("%s: Active = v%d, want the active version of %v", s.name, act.Version, s.want)
		}
	}
	// Pruned artifacts are gone from the object store, kept ones are not.
	for _, m := range metas {
		_, _, err := e.obj.Store.Get(ctx, m.ArtifactKey)
		kept := m.Version == 1 || m.Version == 5
		if kept && err != nil || !kept && !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("artifact of v%d after prune: %v (kept %v)", m.Version, err, kept)
		}
	}
	// A new version continues the numbering.
	if m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange()); err != nil || m.Version != 6 {
		t.Errorf("Train after prune = v%d, %v; want v6", m.Version, err)
	}
}

func TestCorruptArtifact(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, e *env, m models.Meta)
	}{
		{"bit flip on disk", func(t *testing.T, e *env, m models.Meta) {
			path := filepath.Join(e.dir, "objects", filepath.FromSlash(m.ArtifactKey))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x10
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by other valid object", func(t *testing.T, e *env, m models.Meta) {
			other, _, err := e.obj.Store.Get(t.Context(), models.ArtifactKey(m.Name, 1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.obj.Store.PutBytes(t.Context(), m.ArtifactKey, other, objects.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated and rehashed", func(t *testing.T, e *env, m models.Meta) {
			b, _, err := e.obj.Store.Get(t.Context(), m.ArtifactKey)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.obj.Store.PutBytes(t.Context(), m.ArtifactKey, b[:len(b)-7], objects.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openEnv(t, t.TempDir())
			ctx := t.Context()
			write(t, e.ts, keyTemp, signal(30, t0, 300, nil))
			if _, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), timeseries.Range{Start: t0, End: t0 + 200*step}); err != nil {
				t.Fatal(err)
			}
			m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
			if err != nil {
				t.Fatal(err)
			}
			c.corrupt(t, e, m)
			if _, err := e.reg.Load(ctx, m.Name, m.Version); !errors.Is(err, models.ErrCorrupt) {
				t.Errorf("Load: %v, want ErrCorrupt", err)
			}
			if _, err := e.reg.Promote(ctx, m.Name, m.Version); !errors.Is(err, models.ErrCorrupt) {
				t.Errorf("Promote: %v, want ErrCorrupt", err)
			}
			if st := stages(t, e.reg, m.Name)[m.Version]; st != models.StageCandidate {
				t.Errorf("stage after refused promote = %s, want candidate", st)
			}
		})
	}
}

func TestActiveThroughCache(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	write(t, e.ts, keyTemp, signal(40, t0, 400, nil))
	name := "series:" + keyTemp
	m1, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Active(ctx, name); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Active before promote: %v, want ErrNotFound", err)
	}
	if _, err := e.reg.Promote(ctx, name, m1.Version); err != nil {
		t.Fatal(err)
	}
	gets := func() int64 { return e.obj.gets.Load() }
	base := gets()
	for range 50 {
		if _, err := e.reg.Active(ctx, name); err != nil {
			t.Fatal(err)
		}
		init, ok, err := e.reg.InitialState(ctx, keyTemp)
		if err != nil || !ok || init.Version != m1.Version || init.Model != name {
			t.Fatalf("InitialState = %+v, %v, %v; want %s@%d", init, ok, err, name, m1.Version)
		}
	}
	// Promote loaded (and cached) the artifact: no object store reads since.
	if got := gets() - base; got != 0 {
		t.Errorf("object store reads for 100 cached loads = %d, want 0", got)
	}
	// A promotion is seen at once; the new artifact is read once.
	m2, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Promote(ctx, name, m2.Version); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		a, err := e.reg.Active(ctx, name)
		if err != nil || a.Version != m2.Version {
			t.Fatalf("Active after promote = %v, %v; want v%d", a, err, m2.Version)
		}
	}
	if got := gets() - base; got != 1 {
		t.Errorf("object store reads after second promote = %d, want 1", got)
	}
	// After the artifact TTL the cache forgets it and the store is read again.
	e.clock.Add((models.DefaultArtifactTTL + time.Minute).Milliseconds())
	if _, err := e.reg.Active(ctx, name); err != nil {
		t.Fatal(err)
	}
	if got := gets() - base; got != 2 {
		t.Errorf("object store reads after TTL = %d, want 2", got)
	}
}

func TestInitialState(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	temp, hum := signal(50, t0, nTrain, nil), signal(51, t0, nTrain, nil)
	write(t, e.ts, keyTemp, temp)
	write(t, e.ts, keyHum, hum)
	if _, ok, err := e.reg.InitialState(ctx, keyTemp); ok || err != nil {
		t.Errorf("InitialState without models = %v, %v; want none", ok, err)
	}
	dm, err := e.reg.Train(ctx, models.DeviceScope("m1"), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Promote(ctx, dm.Name, dm.Version); err != nil {
		t.Fatal(err)
	}
	// A series model trained on a shorter history takes precedence.
	short := timeseries.Range{Start: t0, End: t0 + 1000*step}
	sm, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Promote(ctx, sm.Name, sm.Version); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key       string
		wantModel string
		history   []timeseries.Sample
	}{
		{keyTemp, sm.Name, temp[:1000]},
		{keyHum, dm.Name, hum},
	}
	for _, c := range cases {
		init, ok, err := e.reg.InitialState(ctx, c.key)
		if err != nil || !ok || init.Model != c.wantModel {
			t.Fatalf("InitialState(%s) = %s, %v, %v; want from %s", c.key, init.Model, ok, err, c.wantModel)
		}
		ens, err := init.Ensemble()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ens.MarshalBinary()
		want, _ := feedAll(c.history).MarshalBinary()
		if !cmp.Equal(got, want) {
			t.Errorf("InitialState(%s): state differs from a detector fed its history", c.key)
		}
	}
	if _, ok, err := e.reg.InitialState(ctx, keyOther); ok || err != nil {
		t.Errorf("InitialState of a series of a device without model = %v, %v; want none", ok, err)
	}
	dev, ok, err := e.reg.InitialDevice(ctx, "m1")
	if err != nil || !ok || !cmp.Equal(dev.Sensors, []string{keyHum, keyTemp}) {
		t.Fatalf("InitialDevice = %+v, %v, %v", dev, ok, err)
	}
	if _, err := dev.Detector(); err != nil {
		t.Errorf("InitialDevice.Detector: %v", err)
	}
}

func TestBacktest(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	const nTest = 2000
	faultStart, faultEnd := 1000, 1060
	fault := func(i int) float64 {
		if i >= nTrain+faultStart && i < nTrain+faultEnd {
			return 12
		}
		return 0
	}
	write(t, e.ts, keyTemp, signal(60, t0, nTrain+nTest, fault))
	write(t, e.ts, keyHum, signal(61, t0, nTrain+nTest, nil))
	test := timeseries.Range{Start: t0 + nTrain*step, End: t0 + (nTrain+nTest)*step}

	for _, scope := range []models.Scope{models.SeriesScope(keyTemp), models.SeriesScope(keyHum), models.DeviceScope("m1")} {
		t.Run(scope.Name(), func(t *testing.T) {
			m, err := e.reg.Train(ctx, scope, trainRange())
			if err != nil {
				t.Fatal(err)
			}
			mod, err := e.reg.Load(ctx, m.Name, m.Version)
			if err != nil {
				t.Fatal(err)
			}
			var progress []models.Progress
			rep, err := e.reg.Backtest(ctx, mod, test, models.BacktestOptions{Progress: func(p models.Progress) { progress = append(progress, p) }})
			if err != nil {
				t.Fatalf("Backtest: %v", err)
			}
			wantReadings := int64(nTest * len(mod.Artifact.Series))
			if rep.Readings != wantReadings {
				t.Errorf("Readings = %d, want %d", rep.Readings, wantReadings)
			}
			if len(progress) == 0 || progress[len(progress)-1].Done != wantReadings || progress[len(progress)-1].Total != wantReadings {
				t.Errorf("last progress = %+v, want %d of %d", progress[len(progress)-1:], wantReadings, wantReadings)
			}
			fs, fe := test.Start+int64(faultStart)*step, test.Start+int64(faultEnd)*step
			if rep.PerSeries[keyHum] != 0 {
				t.Errorf("clean series %s: %d events %+v, want 0", keyHum, rep.PerSeries[keyHum], rep.Events)
			}
			if _, ok := mod.Artifact.Lookup(keyTemp); !ok {
				return
			}
			found := 0
			for _, ev := range rep.Events {
				if ev.Series != keyTemp {
					continue
				}
				if ev.Start < fs || ev.Start > fe {
					t.Errorf("event %+v outside the fault [%d, %d)", ev, fs, fe)
				}
				found++
			}
			if found != 1 {
				t.Errorf("events on the faulty series = %d, want 1: %+v", found, rep.Events)
			}
			if scope.Kind == models.ScopeDevice {
				if rep.DeviceRows != nTest || rep.PerSeries[m.Name] != 1 {
					t.Errorf("device: %d rows, %d events; want %d rows, 1 event: %+v", rep.DeviceRows, rep.PerSeries[m.Name], nTest, rep.Events)
				}
				for _, ev := range rep.Events {
					if ev.Series == m.Name && (ev.Start < fs || ev.Start > fe) {
						t.Errorf("device event %+v outside the fault [%d, %d)", ev, fs, fe)
					}
				}
			}
			if got := rep.AnomaliesPer100k(); got <= 0 {
				t.Errorf("AnomaliesPer100k = %v, want > 0", got)
			}
		})
	}
}

func TestRestartKeepsModels(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	ctx := t.Context()
	write(t, e.ts, keyTemp, signal(70, t0, 500, nil))
	m1, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Promote(ctx, m1.Name, m2.Version); err != nil {
		t.Fatal(err)
	}
	before, err := e.reg.List(ctx, m1.Name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.reg.Active(ctx, m1.Name)
	if err != nil {
		t.Fatal(err)
	}
	e.close()

	e2 := openEnv(t, dir)
	after, err := e2.reg.List(ctx, m1.Name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("versions after restart (-before +after):\n%s", diff)
	}
	got, err := e2.reg.Active(ctx, m1.Name)
	if err != nil {
		t.Fatalf("Active after restart: %v", err)
	}
	if e2.obj.gets.Load() != 1 {
		t.Errorf("object reads after restart = %d, want 1 (fresh cache)", e2.obj.gets.Load())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("active model after restart (-before +after):\n%s", diff)
	}
	if _, err := e2.reg.Rollback(ctx, m1.Name); !errors.Is(err, models.ErrNoPrevious) {
		t.Errorf("Rollback after restart: %v, want ErrNoPrevious (v1 was never active)", err)
	}
}

func TestSaveSkipsOrphanAndRaces(t *testing.T) {
	e := openEnv(t, t.TempDir())
	ctx := t.Context()
	write(t, e.ts, keyTemp, signal(80, t0, 300, nil))
	name := "series:" + keyTemp
	// An artifact left by a crash between artifact and metadata writes.
	if _, err := e.obj.Store.PutBytes(ctx, models.ArtifactKey(name, 1), []byte("orphan"), objects.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		t.Fatalf("Train over an orphan: %v", err)
	}
	if m.Version != 2 {
		t.Errorf("Train over orphan v1 = v%d, want v2", m.Version)
	}
	if b, _, err := e.obj.Store.Get(ctx, models.ArtifactKey(name, 1)); err != nil || string(b) != "orphan" {
		t.Errorf("orphan = %q, %v; want it left untouched", b, err)
	}
	// Concurrent trainings of one scope get distinct, loadable versions.
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Train: %v", err)
		}
	}
	vs, err := e.reg.List(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, m := range vs {
		got = append(got, m.Version)
		if _, err := e.reg.Load(ctx, name, m.Version); err != nil {
			t.Errorf("Load v%d: %v", m.Version, err)
		}
	}
	if len(got) != n+1 {
		t.Errorf("versions after %d concurrent trainings = %v, want %d", n, got, n+1)
	}
}
