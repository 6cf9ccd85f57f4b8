package engine_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// BenchmarkProcess measures engine throughput: readings per second through
// Process (default ensemble, device detector on or off), clean data, real
// stores, no HTTP or bus. Each op is one batch of one tick of every series.
func BenchmarkProcess(b *testing.B) {
	for _, devDet := range []bool{true, false} {
		for _, perDev := range []int{1, 4} {
			b.Run(fmt.Sprintf("device_detection=%v/series_per_device=%d", devDet, perDev), func(b *testing.B) {
				benchProcess(b, devDet, perDev, false)
			})
		}
	}
}

// BenchmarkHandle is BenchmarkProcess through the bus message path:
// encoding with Messages and decoding in Handle included.
func BenchmarkHandle(b *testing.B) {
	benchProcess(b, true, 4, true)
}

func benchProcess(b *testing.B, devDet bool, perDev int, viaBus bool) {
	const devices = 50
	e := newEnv(b)
	cfg := engine.DefaultConfig()
	cfg.DeviceDetection = devDet
	en, err := engine.New(e.ts, e.db, nil, engine.Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	var series []telemetry.Series
	for d := range devices {
		for s := range perDev {
			series = append(series, telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: fmt.Sprintf("dev-%03d", d)}}, fmt.Sprintf("f%d", s)))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]telemetry.Point, len(series))
	tick := int64(0)
	next := func() {
		for i, s := range series {
			batch[i] = telemetry.Point{Series: s, Time: t0 + tick*1000, Value: 50 + rng.NormFloat64()}
		}
		tick++
	}
	// Warm every detector up first: steady state is what runs in production.
	for range 400 {
		next()
		if err := en.Process(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		next()
		if viaBus {
			msgs, err := engine.Messages(batch)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range msgs {
				if err := en.Handle(b.Context(), m); err != nil {
					b.Fatal(err)
				}
			}
		} else if err := en.Process(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
