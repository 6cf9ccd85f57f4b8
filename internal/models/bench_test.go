package models_test

import (
	"testing"

	"github.com/vigil-iot/vigil/internal/models"
)

// BenchmarkInitialState measures the cached path the live engine takes for
// a series without checkpoint whose model is active.
func BenchmarkInitialState(b *testing.B) {
	e := openEnvB(b)
	ctx := b.Context()
	m, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.reg.Promote(ctx, m.Name, m.Version); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := e.reg.InitialState(ctx, keyTemp); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkInitialStateNoModel measures the negative (cached) answer for a
// series without any model.
func BenchmarkInitialStateNoModel(b *testing.B) {
	e := openEnvB(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := e.reg.InitialState(ctx, keyOther); err != nil || ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkTrain measures training one series of nTrain readings, storing
// included; readings/s is reported.
func BenchmarkTrain(b *testing.B) {
	e := openEnvB(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.reg.Train(ctx, models.SeriesScope(keyTemp), trainRange()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nTrain)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

func openEnvB(b *testing.B) *env {
	b.Helper()
	e := openEnv(b, b.TempDir())
	write(b, e.ts, keyTemp, signal(1, t0, nTrain, nil))
	return e
}
