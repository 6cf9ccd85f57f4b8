package eval

import (
	"bytes"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

func BenchmarkEvaluateFile(b *testing.B) {
	const n = 30000
	windows := []simulate.Window{window(simulate.Spike, 5000, 5002), window(simulate.Drift, 12000, 12800), window(simulate.Dropout, 20000, 20000)}
	fl := simulate.FileLabels{File: "f.csv", Rows: n, Columns: []string{"v"}, Windows: windows}
	var flagged []int
	for i := 0; i < n; i += 97 {
		flagged = append(flagged, i)
	}
	s := scoredWith(n, flagged...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EvaluateFile(fl, s, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadScored(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("timestamp,v,anomaly_score,is_anomaly\n")
	for i := range 30000 {
		buf.WriteString(t0.Add(time.Duration(i) * time.Second).Format(simulate.CSVTimeFormat))
		buf.WriteString(",21.35,0.013,0\n")
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadScored(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
