package app_test

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// TestTrainDevices trains a candidate model per device from stored
// history, skips a round while another process holds the training lock, and
// keeps versions across rounds.
func TestTrainDevices(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TrainWindow = config.Duration(6 * time.Hour)
	a, err := app.Open(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	now := time.Now()
	var pts []telemetry.Point
	for _, dev := range []string{"pump-1", "pump-2"} {
		for _, field := range []string{"temp", "flow"} {
			s := telemetry.NewSeries("plant", telemetry.Tags{{Key: "device", Value: dev}}, field)
			for i := range 300 {
				ts := now.Add(-5 * time.Hour).Add(time.Duration(i) * time.Minute)
				pts = append(pts, telemetry.Point{Series: s, Time: telemetry.Millis(ts), Value: 20 + math.Sin(float64(i)/20) + float64(i%7)/10})
			}
		}
	}
	if err := a.TS.WritePoints(t.Context(), pts); err != nil {
		t.Fatal(err)
	}

	n, err := a.TrainDevices(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("TrainDevices: trained %d, err %v; want 2 models, nil", n, err)
	}
	reg, err := a.SharedModels()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"device:pump-1", "device:pump-2"} {
		vs, err := reg.List(t.Context(), name)
		if err != nil || len(vs) != 1 || vs[0].Version != 1 {
			t.Fatalf("List(%s) after one round = %+v, %v; want version 1", name, vs, err)
		}
	}

	// Another process is training: this round is skipped.
	lk, err := a.Locker.Lock(t.Context(), "vigil/lock/scheduled-training", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.TrainDevices(t.Context()); err != nil || n != 0 {
		t.Fatalf("TrainDevices while locked: trained %d, err %v; want 0, nil", n, err)
	}
	if err := a.Locker.Unlock(t.Context(), "vigil/lock/scheduled-training", lk.Token); err != nil {
		t.Fatal(err)
	}

	if n, err := a.TrainDevices(t.Context()); err != nil || n != 2 {
		t.Fatalf("second round: trained %d, err %v; want 2, nil", n, err)
	}
	vs, err := reg.List(t.Context(), "device:pump-1")
	if err != nil || len(vs) != 2 {
		t.Fatalf("List(device:pump-1) after two rounds = %+v, %v; want 2 versions", vs, err)
	}
}
