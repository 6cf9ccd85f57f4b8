package app_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// TestModelsOverAppStores trains, promotes and reloads a model through the
// app's embedded stores, then manages it from an app opened beside a
// process holding the time-series store, as `vigil models` does.
func TestModelsOverAppStores(t *testing.T) {
	ctx := t.Context()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	now := time.Now().Truncate(time.Minute)
	a, err := app.Open(ctx, cfg, app.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer a.Close()
	s := telemetry.NewSeries("pump", telemetry.Tags{{Key: "device", Value: "p1"}}, "temp")
	pts := make([]telemetry.Point, 400)
	from := now.Add(-time.Duration(len(pts)) * time.Minute).UnixMilli()
	for i := range pts {
		pts[i] = telemetry.Point{Series: s, Time: from + int64(i)*60000, Value: 20 + math.Sin(float64(i)/10)}
	}
	if err := a.TS.WritePoints(ctx, pts); err != nil {
		t.Fatal(err)
	}
	reg, err := a.Models(models.Options{})
	if err != nil {
		t.Fatalf("Models: %v", err)
	}
	m, err := reg.Train(ctx, models.DeviceScope("p1"), timeseries.Range{Start: from, End: now.UnixMilli()})
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	if m.Training.Readings != int64(len(pts)) {
		t.Errorf("Train read %d readings, want %d", m.Training.Readings, len(pts))
	}
	if _, err := reg.Promote(ctx, m.Name, m.Version); err != nil {
		t.Fatalf("Promote: %v", err)
	}

	// A second app on the same directory, as `vigil models` beside `vigil
	// serve`: the time-series store is locked, the rest is usable.
	b, err := app.Open(ctx, cfg, app.Options{AppDBOnly: true})
	if err != nil {
		t.Fatalf("Open AppDBOnly: %v", err)
	}
	defer b.Close()
	if err := b.OpenTimeSeries(ctx); !app.StoreLocked(err) {
		t.Errorf("OpenTimeSeries beside a holder: %v, want a locked-store error", err)
	}
	if err := b.OpenObjects(ctx); err != nil {
		t.Fatalf("OpenObjects: %v", err)
	}
	reg2, err := b.Models(models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	init, ok, err := reg2.InitialState(ctx, s.Key())
	if err != nil || !ok || init.Model != "device:p1" || init.Version != m.Version {
		t.Fatalf("InitialState from the second app = %+v, %v, %v; want device:p1@%d", init, ok, err, m.Version)
	}
	if _, err := reg2.Train(ctx, models.DeviceScope("p1"), timeseries.Range{Start: from, End: now.UnixMilli()}); !errors.Is(err, models.ErrUnavailable) {
		t.Errorf("Train without a time-series store: %v, want ErrUnavailable", err)
	}
}
