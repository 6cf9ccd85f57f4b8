package embedts_test

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
	"github.com/vigil-iot/vigil/internal/timeseries/timeseriestest"
)

// BenchmarkConformance runs the shared benchmarks (WritePoints points/s,
// QueryRange and Downsample over one day of a 1 Hz series in the head).
func BenchmarkConformance(b *testing.B) {
	timeseriestest.RunBenchmarks(b, newHarness)
}

// cpuTime returns the CPU time (user + system) this process used so far:
// on a shared machine it says more about the cost of a write than the
// wall clock does.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWritePoints is the shared WritePoints benchmark (10k series,
// batches of 5k, one goroutine) with the CPU time per point added.
func BenchmarkWritePoints(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("series=10000/batch=5000/sync=%v", sync), func(b *testing.B) {
			s, err := embedts.Open(b.TempDir(), embedts.Options{SyncWrites: sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			cpu0 := cpuTime(b)
			timeseriestest.BenchmarkWritePoints(b, s, newHarness(b).Capabilities(), 10000, 5000)
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*5000), "cpu-ns/point")
		})
	}
}

// BenchmarkLibraryAppend is the reference for WritePoints: the library's
// appender alone, with cached series refs, same shape (10k series, batches
// of 5k, one goroutine).
func BenchmarkLibraryAppend(b *testing.B) {
	b.Run("series=10000/batch=5000", func(b *testing.B) {
		opts := tsdb.DefaultOptions()
		opts.OutOfOrderTimeWindow = (24 * time.Hour).Milliseconds()
		db, err := tsdb.Open(b.TempDir(), slog.New(slog.DiscardHandler), nil, opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		const nSeries, batch = 10000, 5000
		lsets := make([]labels.Labels, nSeries)
		refs := make([]storage.SeriesRef, nSeries)
		for i := range lsets {
			lsets[i] = labels.FromStrings("__name__", "bench", "__field__", "temperature",
				"device", fmt.Sprintf("dev-%05d", i), "site", fmt.Sprintf("site-%02d", i%20))
		}
		start := time.Now().Add(-12 * time.Hour).UnixMilli()
		next, total := 0, 0
		began, cpu0 := time.Now(), cpuTime(b)
		b.ReportAllocs()
		for b.Loop() {
			app := db.Appender(b.Context())
			for range batch {
				i := next % nSeries
				ref, err := app.Append(refs[i], lsets[i], start+int64(next/nSeries)*1000, 20+float64(next%1000)/100)
				if err != nil {
					b.Fatal(err)
				}
				refs[i] = ref
				next++
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			total += batch
		}
		b.ReportMetric(float64(total)/time.Since(began).Seconds(), "points/s")
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(total), "cpu-ns/point")
	})
}

// BenchmarkBytesPerPoint writes 6 hours of 100 series at 1 Hz, compacts and
// reports the size of the blocks per point. Run it with -benchtime=1x.
func BenchmarkBytesPerPoint(b *testing.B) {
	const nSeries, hours = 100, 6
	shapes := []struct {
		name string
		// sample returns the timestamp offset (ms) and value of sample i.
		sample func(rng *rand.Rand, i int, prev float64) (int64, float64)
	}{
		{"shape=sensor-2dec-jitter50ms", func(rng *rand.Rand, i int, prev float64) (int64, float64) {
			v := math.Round((prev+rng.NormFloat64()*0.05)*100) / 100
			return int64(i)*1000 + rng.Int64N(101) - 50, v
		}},
		{"shape=integer-grid1s", func(rng *rand.Rand, i int, prev float64) (int64, float64) {
			v := prev
			if rng.IntN(10) == 0 {
				v += float64(rng.IntN(3) - 1)
			}
			return int64(i) * 1000, v
		}},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			var perPoint float64
			for b.Loop() {
				s, err := embedts.Open(b.TempDir(), embedts.Options{})
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				start := time.Now().Add(-(hours + 1) * time.Hour).Truncate(time.Hour).UnixMilli()
				series := make([]telemetry.Series, nSeries)
				prev := make([]float64, nSeries)
				for i := range series {
					series[i] = telemetry.NewSeries("sensor", telemetry.Tags{{Key: "device", Value: fmt.Sprintf("dev-%03d", i)}}, "value")
					prev[i] = float64(20 + i%10)
				}
				n := hours * 3600
				pts := make([]telemetry.Point, 0, 5000)
				total := 0
				for i := range n {
					for j := range series {
						dt, v := sh.sample(rng, i, prev[j])
						prev[j] = v
						pts = append(pts, telemetry.Point{Series: series[j], Time: start + dt, Value: v})
						if len(pts) == cap(pts) {
							if err := s.WritePoints(b.Context(), pts); err != nil {
								b.Fatal(err)
							}
							total += len(pts)
							pts = pts[:0]
						}
					}
				}
				if err := s.WritePoints(b.Context(), pts); err != nil {
					b.Fatal(err)
				}
				total += len(pts)
				if err := s.Compact(b.Context()); err != nil {
					b.Fatal(err)
				}
				size, err := s.BlockBytes()
				if err != nil {
					b.Fatal(err)
				}
				perPoint = float64(size) / float64(total)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perPoint, "bytes/point")
		})
	}
}

// BenchmarkDownsampleCompacted is Downsample over one day of one 1 Hz series
// at a 1-minute step, with the data compacted into blocks.
func BenchmarkDownsampleCompacted(b *testing.B) {
	b.Run("series=1/span=1d/interval=1s/step=1m", func(b *testing.B) {
		s, err := embedts.Open(b.TempDir(), embedts.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		sr := telemetry.NewSeries("day", telemetry.Tags{{Key: "device", Value: "d"}}, "value")
		start := time.Now().Add(-24*time.Hour + time.Minute).Truncate(time.Second).UnixMilli()
		const n = 86400
		pts := make([]telemetry.Point, 0, 5000)
		for i := range n {
			pts = append(pts, telemetry.Point{Series: sr, Time: start + int64(i)*1000, Value: 20 + 10*math.Sin(float64(i)/3600)})
			if len(pts) == cap(pts) || i == n-1 {
				if err := s.WritePoints(b.Context(), pts); err != nil {
					b.Fatal(err)
				}
				pts = pts[:0]
			}
		}
		if err := s.Compact(b.Context()); err != nil {
			b.Fatal(err)
		}
		r := timeseries.Range{Start: start, End: start + n*1000}
		b.ReportAllocs()
		for b.Loop() {
			out, err := s.Downsample(b.Context(), timeseries.Selector{Measurement: "day"}, r, time.Minute, timeseries.Aggregates)
			if err != nil {
				b.Fatal(err)
			}
			if len(out) != 1 || len(out[0].Buckets) < 1440 {
				b.Fatalf("Downsample returned %d series", len(out))
			}
		}
	})
}
