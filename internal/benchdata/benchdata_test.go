package benchdata_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/benchdata"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/eval"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// writeFiles writes name → content under dir, creating folders.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readLabels reads and validates out's labels file with simulate.ReadLabels.
func readLabels(t *testing.T, out string) simulate.Labels {
	t.Helper()
	f, err := os.Open(filepath.Join(out, simulate.LabelsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := simulate.ReadLabels(f)
	if err != nil {
		t.Fatalf("ReadLabels of the imported labels: %v", err)
	}
	return l
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestImportNAB(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "corpus")
	writeFiles(t, data, map[string]string{
		// A repeated hour: 01:00 and 01:30 come back after 01:30; the earlier
		// 01:00 is dropped, the equal 01:30 kept (times may repeat).
		"realKnownCause/machine_temperature.csv": "timestamp,value\n" +
			"2013-12-02 00:00:00,73.5\n" +
			"2013-12-02 00:30:00,74.25\n" +
			"2013-12-02 01:00:00,80\n" +
			"2013-12-02 01:30:00,99.1\n" +
			"2013-12-02 01:00:00,75\n" +
			"2013-12-02 01:30:00,76\n" +
			"2013-12-02 02:00:00,1e2\n",
		// Extra label and notes columns, a quoted note with a comma, CRLF.
		"artificialWithAnomaly/art_spike.csv": "timestamp,value,label,notes\r\n" +
			"2014-04-01 00:00:00,10,0,\r\n" +
			"2014-04-01 00:05:00,-3.5,1,\"spike, big\"\r\n" +
			"2014-04-01 00:10:00,10,0,\r\n",
		// No label key: a warning, no windows.
		"realTweets/Twitter_volume_X.csv": "timestamp,value\n2015-02-26 21:42:53,1\n2015-02-26 21:47:53,2\n",
	})
	labelsPath := filepath.Join(t.TempDir(), "combined_windows.json")
	writeFiles(t, filepath.Dir(labelsPath), map[string]string{"combined_windows.json": `{
  "realKnownCause/machine_temperature.csv": [
    ["2013-12-02 01:30:00.000000", "2013-12-02 02:00:00.000000"]
  ],
  "artificialWithAnomaly/art_spike.csv": [
    ["2014-04-01 00:05:00.000000", "2014-04-01 00:05:00.000000"],
    ["2014-04-01 00:00:00.000000", "2014-04-01 00:01:00.500000"]
  ],
  "realAWSCloudwatch/missing.csv": []
}`})
	var progress []string
	got, sum, err := benchdata.ImportNAB(t.Context(), data, labelsPath, out, benchdata.Options{
		Progress: func(i, n int, f simulate.FileLabels, dropped int) {
			progress = append(progress, fmt.Sprintf("%d/%d %s %d", i, n, f.File, dropped))
		},
	})
	if err != nil {
		t.Fatalf("ImportNAB: %v", err)
	}
	level := func(start, end string) simulate.Window {
		return simulate.Window{Kind: simulate.LevelShift, Columns: []string{"value"}, Start: ts(start), End: ts(end)}
	}
	want := simulate.Labels{Version: simulate.LabelsVersion, Files: []simulate.FileLabels{
		{File: "artificialWithAnomaly_art_spike.csv", IntervalMs: 300000, Rows: 3, Columns: []string{"value"}, Windows: []simulate.Window{
			level("2014-04-01T00:00:00Z", "2014-04-01T00:01:00.501Z"),
			level("2014-04-01T00:05:00Z", "2014-04-01T00:05:00.001Z"),
		}},
		{File: "realKnownCause_machine_temperature.csv", IntervalMs: 1800000, Rows: 6, Columns: []string{"value"}, Windows: []simulate.Window{
			level("2013-12-02T01:30:00Z", "2013-12-02T02:00:00.001Z"),
		}},
		{File: "realTweets_Twitter_volume_X.csv", IntervalMs: 300000, Rows: 2, Columns: []string{"value"}, Windows: []simulate.Window{}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ImportNAB labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, readLabels(t, out)); diff != "" {
		t.Errorf("labels.json (-want +got):\n%s", diff)
	}
	wantSum := benchdata.Summary{Files: 3, Rows: 11, Windows: 3, Dropped: 1, Warnings: []string{
		fmt.Sprintf("realTweets/Twitter_volume_X.csv: no key %q in %s: the file gets no windows", "realTweets/Twitter_volume_X.csv", labelsPath),
		fmt.Sprintf("%s: label key %q matches no CSV file under %s", labelsPath, "realAWSCloudwatch/missing.csv", data),
	}}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	wantProgress := []string{
		"1/3 artificialWithAnomaly_art_spike.csv 0",
		"2/3 realKnownCause_machine_temperature.csv 1",
		"3/3 realTweets_Twitter_volume_X.csv 0",
	}
	if diff := cmp.Diff(wantProgress, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"realKnownCause_machine_temperature.csv": "timestamp,value\n" +
			"2013-12-02T00:00:00.000Z,73.5\n" +
			"2013-12-02T00:30:00.000Z,74.25\n" +
			"2013-12-02T01:00:00.000Z,80\n" +
			"2013-12-02T01:30:00.000Z,99.1\n" +
			"2013-12-02T01:30:00.000Z,76\n" +
			"2013-12-02T02:00:00.000Z,1e2\n",
		"artificialWithAnomaly_art_spike.csv": "timestamp,value\n" +
			"2014-04-01T00:00:00.000Z,10\n" +
			"2014-04-01T00:05:00.000Z,-3.5\n" +
			"2014-04-01T00:10:00.000Z,10\n",
	} {
		if diff := cmp.Diff(want, readFile(t, filepath.Join(out, name))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestImportSKAB(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	header := "datetime;Accelerometer1RMS;Current;Volume Flow RateRMS;"
	writeFiles(t, data, map[string]string{
		// Two anomalous runs, the second running to the last row.
		"valve1/0.csv": header + "anomaly;changepoint\r\n" +
			"2020-03-09 10:14:33;0.0273;0.6;32.0;0.0;0.0\r\n" +
			"2020-03-09 10:14:34;0.0277;0.7;32.5;1.0;1.0\r\n" +
			"2020-03-09 10:14:35;0.0276;0.8;33.0;1.0;0.0\r\n" +
			"2020-03-09 10:14:36;0.0275;0.6;32.0;0.0;1.0\r\n" +
			"2020-03-09 10:14:38;0.0274;0.6;32.1;1.0;0.0\r\n",
		// The is_anomaly;is_pa variant, a row out of order, a 2 s median step.
		"other/13.csv": header + "is_anomaly;is_pa\r\n" +
			"2020-03-01 15:44:06;1;2;3;1;0\r\n" +
			"2020-03-01 15:44:08;1;2;3;0;0\r\n" +
			"2020-03-01 15:44:07;9;9;9;1;0\r\n" +
			"2020-03-01 15:44:10;1;2;3;0;0\r\n",
		// No label columns: a clean file.
		"anomaly-free/anomaly-free.csv": strings.TrimSuffix(header, ";") + "\r\n" +
			"2020-02-08 13:30:47;0.2;0.3;0.4\r\n",
	})
	got, sum, err := benchdata.ImportSKAB(t.Context(), data, out, benchdata.Options{})
	if err != nil {
		t.Fatalf("ImportSKAB: %v", err)
	}
	cols := []string{"Accelerometer1RMS", "Current", "Volume_Flow_RateRMS"}
	brk := func(start, end string) simulate.Window {
		return simulate.Window{Kind: simulate.CorrelationBreak, Columns: cols, Start: ts(start), End: ts(end)}
	}
	want := simulate.Labels{Version: simulate.LabelsVersion, Files: []simulate.FileLabels{
		{File: "anomaly-free_anomaly-free.csv", IntervalMs: 1000, Rows: 1, Columns: cols, Windows: []simulate.Window{}},
		{File: "other_13.csv", IntervalMs: 2000, Rows: 3, Columns: cols, Windows: []simulate.Window{
			brk("2020-03-01T15:44:06Z", "2020-03-01T15:44:08Z"),
		}},
		{File: "valve1_0.csv", IntervalMs: 1000, Rows: 5, Columns: cols, Windows: []simulate.Window{
			brk("2020-03-09T10:14:34Z", "2020-03-09T10:14:36Z"),
			brk("2020-03-09T10:14:38Z", "2020-03-09T10:14:38.001Z"),
		}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ImportSKAB labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, readLabels(t, out)); diff != "" {
		t.Errorf("labels.json (-want +got):\n%s", diff)
	}
	wantSum := benchdata.Summary{Files: 3, Rows: 9, Windows: 3, Dropped: 1, Warnings: []string{
		"anomaly-free/anomaly-free.csv: no anomaly column: a clean file, no windows",
	}}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	wantCSV := "timestamp,Accelerometer1RMS,Current,Volume_Flow_RateRMS\n" +
		"2020-03-01T15:44:06.000Z,1,2,3\n" +
		"2020-03-01T15:44:08.000Z,1,2,3\n" +
		"2020-03-01T15:44:10.000Z,1,2,3\n"
	if diff := cmp.Diff(wantCSV, readFile(t, filepath.Join(out, "other_13.csv"))); diff != "" {
		t.Errorf("other_13.csv (-want +got):\n%s", diff)
	}
}

func TestImportMalformed(t *testing.T) {
	const skabHeader = "datetime;s1;s2;anomaly;changepoint\r\n"
	tests := []struct {
		name    string
		nab     bool
		file    string // data file content (at dir/x.csv)
		labels  string // NAB labels, default {}
		wantErr string
	}{
		{name: "nab value", nab: true, file: "timestamp,value\n2014-04-10 00:00:00,1\n2014-04-10 00:05:00,abc\n", wantErr: `d/x.csv line 3: malformed benchmark data: value "abc" is not a number`},
		{name: "nab timestamp", nab: true, file: "timestamp,value\n2014-04-10 00:00:00,1\n\n10/04/2014,2\n", wantErr: `d/x.csv line 4: malformed benchmark data: timestamp "10/04/2014"`},
		{name: "nab header", nab: true, file: "time,value\n2014-04-10 00:00:00,1\n", wantErr: "d/x.csv line 1: malformed benchmark data: header"},
		{name: "nab short row", nab: true, file: "timestamp,value\n2014-04-10 00:00:00\n", wantErr: "d/x.csv line 2: malformed benchmark data: 1 fields"},
		{name: "nab label bound", nab: true, file: "timestamp,value\n2014-04-10 00:00:00,1\n", labels: `{"d/x.csv": [["2014-04-10 00:00:00", "soon"]]}`, wantErr: `key "d/x.csv" window 0: malformed benchmark data: timestamp "soon"`},
		{name: "nab label order", nab: true, file: "timestamp,value\n2014-04-10 00:00:00,1\n", labels: `{"d/x.csv": [["2014-04-10 00:00:00", "2014-04-09 00:00:00"]]}`, wantErr: `key "d/x.csv" window 0: malformed benchmark data: end`},
		{name: "skab fields", file: skabHeader + "2020-03-09 10:14:33;1;2;0;0\r\n2020-03-09 10:14:34;1;2;0\r\n", wantErr: "d/x.csv line 3: malformed benchmark data: wrong number of fields"},
		{name: "skab anomaly", file: skabHeader + "2020-03-09 10:14:33;1;2;0.5;0\r\n", wantErr: `d/x.csv line 2: malformed benchmark data: anomaly "0.5" is not 0 or 1`},
		{name: "skab value", file: skabHeader + "2020-03-09 10:14:33;1;2,5;0;0\r\n", wantErr: `d/x.csv line 2: malformed benchmark data: column s2: value "2,5" is not a number`},
		{name: "skab no time", file: "s1;s2;anomaly\r\n1;2;0\r\n", wantErr: "d/x.csv line 1: malformed benchmark data: header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, out := t.TempDir(), t.TempDir()
			writeFiles(t, data, map[string]string{"d/x.csv": tt.file})
			var err error
			if tt.nab {
				labels := filepath.Join(t.TempDir(), "labels.json")
				if tt.labels == "" {
					tt.labels = `{"d/x.csv": []}`
				}
				writeFiles(t, filepath.Dir(labels), map[string]string{"labels.json": tt.labels})
				_, _, err = benchdata.ImportNAB(t.Context(), data, labels, out, benchdata.Options{})
			} else {
				_, _, err = benchdata.ImportSKAB(t.Context(), data, out, benchdata.Options{})
			}
			if !errors.Is(err, benchdata.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("import of %q: got error %v, want ErrMalformed containing %q", tt.file, err, tt.wantErr)
			}
		})
	}
}

// TestImportNABEval imports a NAB-style file with an obvious spike inside
// its window and scores it as 'vigil eval --corpus DIR' does.
func TestImportNABEval(t *testing.T) {
	const n, spikeAt = 3000, 2200
	start := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 5 * time.Minute) }
	for i := range n {
		v := 50 + 5*math.Sin(2*math.Pi*float64(i)/288) + rng.NormFloat64()*0.3
		if i == spikeAt {
			v += 60
		}
		fmt.Fprintf(&b, "%s,%.3f\n", at(i).Format("2006-01-02 15:04:05"), v)
	}
	data, out := t.TempDir(), t.TempDir()
	writeFiles(t, data, map[string]string{
		"artificialWithAnomaly/spike.csv": b.String(),
		"combined_windows.json": fmt.Sprintf(`{"artificialWithAnomaly/spike.csv": [[%q, %q]]}`,
			at(spikeAt-10).Format("2006-01-02 15:04:05.000000"), at(spikeAt+10).Format("2006-01-02 15:04:05.000000")),
	})
	labelsPath := filepath.Join(data, "combined_windows.json")
	if _, _, err := benchdata.ImportNAB(t.Context(), data, labelsPath, out, benchdata.Options{}); err != nil {
		t.Fatalf("ImportNAB: %v", err)
	}
	labels, err := eval.LoadLabels(out)
	if err != nil {
		t.Fatalf("LoadLabels: %v", err)
	}
	opts := detect.DefaultCSVOptions()
	scorer := func(ctx context.Context, in io.Reader, w io.Writer) error {
		_, err := detect.ScoreCSV(ctx, in, w, opts)
		return err
	}
	report, err := eval.Run(t.Context(), out, labels, scorer, eval.DefaultOptions(), nil)
	if err != nil {
		t.Fatalf("eval.Run: %v", err)
	}
	if len(report.Files) != 1 || report.Files[0].Rows != n || len(report.Files[0].Windows) != 1 {
		t.Fatalf("eval report files: got %+v, want one file of %d rows with one window", report.Files, n)
	}
	if w := report.Files[0].Windows[0]; !w.Detected {
		t.Errorf("window %v–%v (rows %v): not detected, want detected", w.Start, w.End, w.Rows)
	}
}
