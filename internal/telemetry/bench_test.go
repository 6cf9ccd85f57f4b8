package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchBody returns n lines of `weather,device=dev-XXXX,site=north,region=eu`
// with the given number of fields over 100 devices.
func benchBody(n, fields int) []byte {
	var b bytes.Buffer
	vals := []string{"21.37", "45.2", "1013.2", "3.4", "182i", "0", "3.1", "412i", "8.3", "3.71"}
	names := []string{"temp", "hum", "press", "wind", "dir", "rain", "uv", "co2", "pm25", "batt"}
	for i := range n {
		fmt.Fprintf(&b, "weather,device=dev-%04d,site=north,region=eu ", i%100)
		for f := range fields {
			if f > 0 {
				b.WriteByte(',')
			}
			if f < len(names) {
				fmt.Fprintf(&b, "%s=%s", names[f], vals[f])
			} else {
				fmt.Fprintf(&b, "f%d=%d.%d", f, i%1000, f)
			}
		}
		fmt.Fprintf(&b, " %d\n", 1700000000000000000+int64(i)*1e9)
	}
	return b.Bytes()
}

func BenchmarkParseLineProtocol(b *testing.B) {
	for _, fields := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("fields=%d", fields), func(b *testing.B) {
			const lines = 10000
			body := benchBody(lines, fields)
			p := NewLineParser(LineOptions{})
			dst := make([]Point, 0, lines*fields)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				res := p.Parse(dst[:0], body)
				if res.Rejected != 0 || len(res.Points) != lines*fields {
					b.Fatalf("got %d points, %d rejected (%v), want %d", len(res.Points), res.Rejected, res.Err(), lines*fields)
				}
			}
			reportLineRates(b, lines, cpuTime(b)-cpu0)
		})
	}
}

func BenchmarkDecoder(b *testing.B) {
	const lines, fields = 10000, 10
	body := benchBody(lines, fields)
	dst := make([]Point, 0, 5000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(body), LineOptions{})
		n := 0
		for {
			res, err := d.Next(dst[:0], 4096)
			n += len(res.Points)
			if err != nil {
				break
			}
		}
		if n != lines*fields {
			b.Fatalf("got %d points, want %d", n, lines*fields)
		}
	}
	reportLineRates(b, lines, cpuTime(b)-cpu0)
}

func BenchmarkAppendPoints(b *testing.B) {
	const lines, fields = 1000, 10
	res := NewLineParser(LineOptions{}).Parse(nil, benchBody(lines, fields))
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		var err error
		if buf, err = AppendPoints(buf[:0], res.Points, Nanosecond); err != nil {
			b.Fatal(err)
		}
	}
	reportLineRates(b, lines, cpuTime(b)-cpu0)
}

func BenchmarkSeriesKey(b *testing.B) {
	for _, tc := range []struct {
		name string
		s    Series
	}{
		{"tags=3", NewSeries("weather", Tags{{"device", "dev-0042"}, {"site", "north"}, {"region", "eu"}}, "temp")},
		{"tags=3/escaped", NewSeries("weather station", Tags{{"device", "dev 0042"}, {"site", "north,1"}, {"region", "e=u"}}, "temp c")},
		{"tags=10", func() Series {
			var ts Tags
			for i := range 10 {
				ts = append(ts, Tag{fmt.Sprintf("key%02d", i), strings.Repeat("v", 12)})
			}
			return NewSeries("weather", ts, "temp")
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				_ = tc.s.Key()
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the CPU time (user+system) consumed so far by the
// process. The machine running benchmarks may be shared, so wall-clock rates
// understate what one core achieves; CPU time does not.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportLineRates reports lines (or objects) per second of wall-clock time
// (lines/s) and per second of the process's CPU time (lines/cpu-s, which
// includes the garbage collector's work on any core).
func reportLineRates(b *testing.B, linesPerOp int, cpu time.Duration) {
	b.Helper()
	total := float64(b.N) * float64(linesPerOp)
	b.ReportMetric(total/b.Elapsed().Seconds(), "lines/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu.Seconds(), "lines/cpu-s")
	}
}

func BenchmarkParseJSON(b *testing.B) {
	const objects, fields = 1000, 10
	res := NewLineParser(LineOptions{}).Parse(nil, benchBody(objects, fields))
	body, err := AppendJSON(nil, res.Points)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]Point, 0, objects*fields)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		res, err := ParseJSON(dst[:0], body, JSONOptions{})
		if err != nil || len(res.Points) != objects*fields {
			b.Fatalf("got %d points, error %v", len(res.Points), err)
		}
	}
	reportLineRates(b, objects, cpuTime(b)-cpu0)
}
