package detect

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkEnsemble measures the default univariate ensemble, warm, on a
// noisy seasonal series with faults.
func BenchmarkEnsemble(b *testing.B) {
	for _, seasonal := range []bool{true, false} {
		b.Run(fmt.Sprintf("seasonal=%v", seasonal), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Seasonal = seasonal
			s := genSeries(1, baseSeasonal, 20000, []fault{faultSpike, faultShift, faultVariance})
			e := NewEnsemble(cfg)
			for i := range 1000 {
				e.Update(s.t[i], s.v[i])
			}
			b.ReportAllocs()
			i, n := 1000, 0
			for b.Loop() {
				e.Update(s.t[i], s.v[i])
				if i++; i == len(s.t) {
					i = 1000
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
			b.ReportMetric(float64(e.StateSize()), "state-bytes")
		})
	}
}

// BenchmarkDevice measures the multivariate detector per row.
func BenchmarkDevice(b *testing.B) {
	for _, k := range []int{4, 8} {
		b.Run(fmt.Sprintf("sensors=%d", k), func(b *testing.B) {
			s := genDevice(2, 20000, []devFault{devShift, devCorrBreak})
			names := make([]string, k)
			rows := make([][]float64, len(s.rows))
			for i := range names {
				names[i] = fmt.Sprintf("s%d", i)
			}
			for i, r := range s.rows {
				rows[i] = make([]float64, k)
				for j := range k {
					rows[i][j] = r[j%4] + float64(j/4)*0.01*r[(j+1)%4]
				}
			}
			d := NewDeviceDetector(DefaultDeviceConfig(), names)
			for i := range 1000 {
				d.Update(s.t[i], rows[i])
			}
			b.ReportAllocs()
			i, n := 1000, 0
			for b.Loop() {
				d.Update(s.t[i], rows[i])
				if i++; i == len(rows) {
					i = 1000
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(d.StateSize()), "state-bytes")
		})
	}
}

// BenchmarkScoreCSV measures the whole CSV path on a 20k-row univariate file.
func BenchmarkScoreCSV(b *testing.B) {
	s := genSeries(3, baseAR, 20000, []fault{faultSpike})
	var sb strings.Builder
	sb.WriteString("timestamp,v\n")
	for i := range s.t {
		fmt.Fprintf(&sb, "%d,%.4f\n", s.t[i], s.v[i])
	}
	in := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ScoreCSV(b.Context(), strings.NewReader(in), io.Discard, DefaultCSVOptions()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s.t))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
