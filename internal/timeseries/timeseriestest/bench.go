package timeseriestest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// RunBenchmarks runs the benchmarks every backend shares: WritePoints
// throughput (reported as points/s), QueryRange and Downsample latency.
// newHarness is called once per benchmark.
func RunBenchmarks(b *testing.B, newHarness func(tb testing.TB) Harness) {
	b.Run("WritePoints/series=10000/batch=5000", func(b *testing.B) {
		f := newFixture(b, newHarness(b))
		BenchmarkWritePoints(b, f.repo, f.caps, 10000, 5000)
	})
	b.Run("QueryRange/series=1/span=1d/interval=1s", func(b *testing.B) {
		f := newFixture(b, newHarness(b))
		sel, r := f.writeDay(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.repo.QueryRange(b.Context(), sel, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Downsample/series=1/span=1d/interval=1s/step=1m", func(b *testing.B) {
		f := newFixture(b, newHarness(b))
		sel, r := f.writeDay(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.repo.Downsample(b.Context(), sel, r, time.Minute, timeseries.Aggregates); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWritePoints writes batches of batch points round-robin over
// nSeries series, one timestamp per round, from one goroutine, and reports
// points/s. Timestamps start half the out-of-order window (at most 12h) in
// the past and advance 1s per round.
func BenchmarkWritePoints(b *testing.B, repo timeseries.Repository, caps Capabilities, nSeries, batch int) {
	if caps.Now == nil {
		caps.Now = time.Now
	}
	back := 12 * time.Hour
	if w := caps.OutOfOrderWindow; w > 0 && w/2 < back {
		back = w / 2
	}
	start := caps.Now().Add(-back).UnixMilli()
	series := make([]telemetry.Series, nSeries)
	for i := range series {
		series[i] = telemetry.NewSeries("bench_write", telemetry.Tags{
			{Key: telemetry.DeviceTag, Value: fmt.Sprintf("dev-%05d", i)},
			{Key: "site", Value: fmt.Sprintf("site-%02d", i%20)},
		}, "temperature")
	}
	pts := make([]telemetry.Point, batch)
	next := 0 // index of the next point over all rounds
	b.ReportAllocs()
	total := 0
	began := time.Now()
	for b.Loop() {
		for i := range pts {
			round := next / nSeries
			pts[i] = telemetry.Point{
				Series: series[next%nSeries],
				Time:   start + int64(round)*1000,
				Value:  20 + float64(next%1000)/100,
			}
			next++
		}
		if err := repo.WritePoints(b.Context(), pts); err != nil {
			b.Fatal(err)
		}
		total += len(pts)
	}
	b.ReportMetric(float64(total)/time.Since(began).Seconds(), "points/s")
}

// writeDay writes one series at 1 Hz for up to a day (less when the
// backend's window is shorter) and returns its selector and range.
func (f *fixture) writeDay(tb testing.TB) (timeseries.Selector, timeseries.Range) {
	tb.Helper()
	now := f.caps.Now()
	start := now.Add(-24 * time.Hour)
	if w := f.caps.OutOfOrderWindow; w > 0 && start.Before(now.Add(-w+time.Minute)) {
		start = now.Add(-w + time.Minute)
	}
	end := start.Add(24 * time.Hour)
	if sk := f.caps.MaxFutureSkew; sk > 0 && end.After(now.Add(sk-time.Minute)) {
		end = now.Add(sk - time.Minute)
	}
	n := int(end.Sub(start) / time.Second)
	start = start.Truncate(time.Second)
	s := f.series("", "device", "day")
	pts := make([]telemetry.Point, 0, 5000)
	for i := range n {
		pts = append(pts, pt(s, start.UnixMilli()+int64(i)*1000, 20+10*math.Sin(float64(i)/3600)))
		if len(pts) == cap(pts) || i == n-1 {
			f.write(pts...)
			pts = pts[:0]
		}
	}
	return timeseries.Selector{Measurement: f.ns}, timeseries.Range{Start: start.UnixMilli(), End: start.UnixMilli() + int64(n)*1000}
}
