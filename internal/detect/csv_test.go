package detect

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// csvOf builds a CSV with the given header and rows of cells.
func csvOf(header string, rows [][]string) string {
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	return b.String()
}

func scoreString(t *testing.T, in string, opts CSVOptions) ([][]string, CSVStats) {
	t.Helper()
	var out bytes.Buffer
	st, err := ScoreCSV(t.Context(), strings.NewReader(in), &out, opts)
	if err != nil {
		t.Fatalf("ScoreCSV: %v", err)
	}
	r := csv.NewReader(&out)
	r.Comma = ','
	if strings.Contains(strings.SplitN(in, "\n", 2)[0], ";") && !strings.Contains(strings.SplitN(in, "\n", 2)[0], ",") {
		r.Comma = ';'
	}
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	return recs, st
}

func TestScoreCSVUnivariate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var rows [][]string
	tm := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	blanks := 0
	for i := range 3000 {
		tm = tm.Add(time.Duration(30+rng.IntN(60)) * time.Second) // irregular
		if i == 2000 {
			tm = tm.Add(6 * time.Hour) // a gap
		}
		v := fmt.Sprintf("%.3f", 20+rng.NormFloat64())
		if i == 2500 {
			v = "35"
		}
		if rng.IntN(50) == 0 {
			v, blanks = "", blanks+1
		}
		rows = append(rows, []string{tm.Format(time.RFC3339), v})
	}
	in := csvOf("timestamp,temp", rows)
	recs, st := scoreString(t, in, DefaultCSVOptions())
	if got, want := recs[0], []string{"timestamp", "temp", "anomaly_score", "is_anomaly"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("header %v, want %v", got, want)
	}
	if len(recs)-1 != len(rows) || st.Rows != int64(len(rows)) {
		t.Fatalf("got %d output rows (stats %d), want %d", len(recs)-1, st.Rows, len(rows))
	}
	if st.Missing != int64(blanks) {
		t.Errorf("missing cells %d, want %d", st.Missing, blanks)
	}
	flagged := map[int]bool{}
	for i, r := range recs[1:] {
		if r[0] != rows[i][0] || r[1] != rows[i][1] {
			t.Fatalf("row %d: input columns %v, want %v", i, r[:2], rows[i])
		}
		s, err := parseFloatStrict(r[2])
		if err != nil || s < 0 || s > 1 {
			t.Fatalf("row %d: anomaly_score %q outside [0, 1]", i, r[2])
		}
		if (r[3] == "1") != (s >= 0.5) {
			t.Errorf("row %d: is_anomaly %s with score %v", i, r[3], s)
		}
		if r[3] == "1" {
			flagged[i] = true
		}
	}
	if !flagged[2000] {
		t.Errorf("the row after a 6-hour gap is not flagged")
	}
	if !flagged[2500] || rows[2500][1] == "" {
		t.Errorf("the spike at row 2500 is not flagged")
	}
	if len(flagged) > 4 {
		t.Errorf("%d rows flagged, want at most 4 (gap, spike and little else): %v", len(flagged), flagged)
	}
}

func parseFloatStrict(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return f, err
}

func TestScoreCSVMultivariate(t *testing.T) {
	s := genDevice(21, 2000, []devFault{devCorrBreak})
	var rows [][]string
	for i := range s.t {
		r := []string{fmt.Sprint(s.t[i] / 1000)} // Unix seconds
		for _, v := range s.rows[i] {
			r = append(r, fmt.Sprintf("%.4f", v))
		}
		if i%37 == 0 {
			r[2] = "NaN"
		}
		rows = append(rows, r)
	}
	in := csvOf("time;"+strings.Join(devSensors, ";"), nil)
	in = strings.ReplaceAll(in, ",", ";")
	var b strings.Builder
	b.WriteString(in)
	for _, r := range rows {
		b.WriteString(strings.Join(r, ";") + "\n")
	}
	recs, st := scoreString(t, b.String(), DefaultCSVOptions())
	if len(recs)-1 != len(rows) || len(recs[0]) != 7 {
		t.Fatalf("got %d rows of %d columns, want %d of 7", len(recs)-1, len(recs[0]), len(rows))
	}
	hits := 0
	for i, r := range recs[1:] {
		if r[6] == "1" && s.label[i] {
			hits++
		}
	}
	if hits == 0 {
		t.Errorf("correlation break not flagged (stats %+v)", st)
	}
}

func TestScoreCSVTimestampForms(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	forms := map[string]func(time.Time) string{
		"rfc3339":  func(t time.Time) string { return t.Format(time.RFC3339Nano) },
		"space":    func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
		"unix s":   func(t time.Time) string { return fmt.Sprint(t.Unix()) },
		"unix ms":  func(t time.Time) string { return fmt.Sprint(t.UnixMilli()) },
		"unix s.f": func(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) },
	}
	for name, f := range forms {
		t.Run(name, func(t *testing.T) {
			var p timeParser
			for i := range 3 {
				tm := base.Add(time.Duration(i) * time.Minute)
				got, err := p.parse(f(tm))
				if err != nil || got != tm.UnixMilli() {
					t.Fatalf("parse(%q) = %d, %v; want %d", f(tm), got, err, tm.UnixMilli())
				}
			}
		})
	}
}

func TestScoreCSVErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // substring naming the place
	}{
		{"empty", "", "line 1"},
		{"one column", "timestamp\n2026-01-01T00:00:00Z\n", "line 1"},
		{"bad value", "timestamp,v\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,abc\n", `line 3, column "v"`},
		{"bad time", "timestamp,v\n2026-01-01T00:00:00Z,1\nyesterday,2\n", `line 3, column "timestamp"`},
		{"unknown time form", "timestamp,v\nnoon,1\n", `line 2, column "timestamp"`},
		{"short row", "timestamp,a,b\n2026-01-01T00:00:00Z,1,2\n2026-01-01T00:01:00Z,1\n", "line 3"},
		{"bad quote", "timestamp,v\n2026-01-01T00:00:00Z,\"1\n", "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ScoreCSV(t.Context(), strings.NewReader(tt.in), &bytes.Buffer{}, DefaultCSVOptions())
			if !errors.Is(err, ErrBadCSV) {
				t.Fatalf("err = %v, want ErrBadCSV", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestScoreCSVProgressAndCancel(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,v\n")
	for i := range 25000 {
		fmt.Fprintf(&b, "%d,%g\n", 1_700_000_000+i*60, math.Sin(float64(i)/50))
	}
	in := b.String()
	opts := DefaultCSVOptions()
	opts.Size = int64(len(in))
	var calls []int64
	opts.Progress = func(rows, bytes, size int64) {
		if bytes > size || size != int64(len(in)) {
			t.Errorf("progress bytes %d of %d, want <= size %d", bytes, size, len(in))
		}
		calls = append(calls, rows)
	}
	var out bytes.Buffer
	st, err := ScoreCSV(t.Context(), strings.NewReader(in), &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 25000 || len(calls) != 3 || calls[len(calls)-1] != 25000 {
		t.Errorf("rows %d, progress calls %v; want 25000 rows and calls at 10000, 20000, 25000", st.Rows, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ScoreCSV(ctx, strings.NewReader(in), &out, DefaultCSVOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v, want context.Canceled", err)
	}
}

func FuzzScoreCSV(f *testing.F) {
	f.Add("timestamp,v\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,2\n")
	f.Add("timestamp;a;b\n1700000000;1;2\n1700000060;;3\n")
	f.Add("t,a,b,c\n1700000000000,1,NaN,3\n1700000060000,1,2,\n")
	f.Add("timestamp,v\n2026-01-01 00:00:00,1e308\n2026-01-01 00:00:01,-1e308\n")
	f.Add("\xef\xbb\xbftimestamp,v\n\"2026-01-01T00:00:00Z\",\"1\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		opts := DefaultCSVOptions()
		opts.Config.Warmup = 10
		opts.Device.Warmup = 10
		var out bytes.Buffer
		st, err := ScoreCSV(t.Context(), strings.NewReader(in), &out, opts)
		if err != nil {
			return
		}
		recs, err := csv.NewReader(strings.NewReader(strings.ReplaceAll(out.String(), ";", ","))).ReadAll()
		if err != nil {
			return // the delimiter swap can break quoted cells; the row count is checked below only when it parses
		}
		if int64(len(recs)-1) != st.Rows {
			t.Fatalf("%d output rows, stats say %d", len(recs)-1, st.Rows)
		}
		for _, r := range recs[1:] {
			s, err := parseFloatStrict(r[len(r)-2])
			if err != nil || s < 0 || s > 1 || math.IsNaN(s) {
				t.Fatalf("score %q outside [0, 1]", r[len(r)-2])
			}
		}
	})
}

// TestScoreCSVHoldsDeviceRegions scores short multivariate files (1,100
// rows at 1 s, a 150-row fault region after the warm-up) row by row, as a
// region-labelled benchmark does: by default a device alarm is held over
// the region; with HoldDeviceAlarms off only onsets are flagged.
func TestScoreCSVHoldsDeviceRegions(t *testing.T) {
	score := func(opts CSVOptions) (f1 float64) {
		var n float64
		for seed := range uint64(6) {
			for _, f := range []devFault{devShift, devCorrBreak, devVariance} {
				s := genDevice(100+seed, 1100, []devFault{f})
				var b strings.Builder
				b.WriteString("timestamp," + strings.Join(devSensors, ",") + "\n")
				for i := range s.t {
					b.WriteString(fmt.Sprint(s.t[i]))
					for _, v := range s.rows[i] {
						b.WriteString(fmt.Sprintf(",%.3f", v))
					}
					b.WriteString("\n")
				}
				recs, _ := scoreString(t, b.String(), opts)
				flags := make([]bool, len(s.t))
				for i, r := range recs[1:] {
					flags[i] = r[len(r)-1] == "1"
					score, err := parseFloatStrict(r[len(r)-2])
					if err != nil || score < 0 || score > 1 || (score >= 0.5) != flags[i] {
						t.Fatalf("row %d: anomaly_score %q with is_anomaly %s, want a score in [0, 1] that is >= 0.5 exactly when flagged", i, r[len(r)-2], r[len(r)-1])
					}
				}
				f1 += pointF1(s.label, flags)
				n++
			}
		}
		return f1 / n
	}
	held := score(DefaultCSVOptions())
	sparseOpts := DefaultCSVOptions()
	sparseOpts.HoldDeviceAlarms = false
	sparse := score(sparseOpts)
	t.Logf("mean point F1: held %.3f, sparse %.3f", held, sparse)
	if held < 0.5 {
		t.Errorf("held alarms: mean point F1 %.3f, want >= 0.5", held)
	}
	if sparse > held/2 {
		t.Errorf("sparse alarms: mean point F1 %.3f, want well under the held %.3f", sparse, held)
	}
}

// A benchmark file carries its labels next to the readings: they are copied
// through, never scored, and an earlier run's score columns are replaced.
func TestScoreCSVLabelColumnsPassThrough(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	tm := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var plain, labelled strings.Builder
	plain.WriteString("timestamp,temp\n")
	labelled.WriteString("timestamp,temp,Anomaly,changepoint,anomaly_score,is_anomaly\n")
	for i := range 2000 {
		tm = tm.Add(time.Minute)
		v := fmt.Sprintf("%.3f", 20+rng.NormFloat64())
		// The labels mark rows 1000-1099 anomalous although the readings
		// are clean: scoring them would flag that region.
		lab := "0"
		if i >= 1000 && i < 1100 {
			lab = "1"
		}
		fmt.Fprintf(&plain, "%s,%s\n", tm.Format(time.RFC3339), v)
		fmt.Fprintf(&labelled, "%s,%s,%s,%s,0.9,1\n", tm.Format(time.RFC3339), v, lab, lab)
	}
	want, _ := scoreString(t, plain.String(), DefaultCSVOptions())
	got, st := scoreString(t, labelled.String(), DefaultCSVOptions())
	if h := strings.Join(got[0], ","); h != "timestamp,temp,Anomaly,changepoint,anomaly_score,is_anomaly" {
		t.Fatalf("header %q: want the labels kept and one pair of score columns", h)
	}
	if strings.Join(st.Columns, ",") != "temp" || strings.Join(st.Labels, ",") != "Anomaly,changepoint" {
		t.Fatalf("columns %v labels %v, want [temp] and [Anomaly changepoint]", st.Columns, st.Labels)
	}
	for i := 1; i < len(got); i++ {
		g, w := got[i], want[i]
		if g[0] != w[0] || g[1] != w[1] || g[4] != w[2] || g[5] != w[3] {
			t.Fatalf("row %d: %v, want the scores of the unlabelled file %v", i, g, w)
		}
	}

	var out bytes.Buffer
	_, err := ScoreCSV(t.Context(), strings.NewReader("timestamp,label\n2026-01-01T00:00:00Z,0\n"), &out, DefaultCSVOptions())
	if !errors.Is(err, ErrBadCSV) || !strings.Contains(err.Error(), "no value column") {
		t.Fatalf("only a label column: err %v, want ErrBadCSV naming the missing value column", err)
	}
}

// A row index written by a data-frame library before the timestamp column
// is copied, not read as the time; the scores are those of the file
// without it.
func TestScoreCSVLeadingIndexColumn(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	tm := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var plain, indexed, unnamed strings.Builder
	plain.WriteString("timestamp,value\n")
	indexed.WriteString(",timestamp,value\n")
	unnamed.WriteString("Unnamed: 0,datetime,value\n")
	for i := range 1500 {
		tm = tm.Add(time.Minute)
		v := fmt.Sprintf("%.3f", 20+rng.NormFloat64())
		if i == 1200 {
			v = "45"
		}
		fmt.Fprintf(&plain, "%s,%s\n", tm.Format(time.RFC3339), v)
		fmt.Fprintf(&indexed, "%d,%s,%s\n", i, tm.Format(time.RFC3339), v)
		fmt.Fprintf(&unnamed, "%d,%s,%s\n", i, tm.Format(time.RFC3339), v)
	}
	want, _ := scoreString(t, plain.String(), DefaultCSVOptions())
	for name, in := range map[string]string{"empty": indexed.String(), "Unnamed: 0": unnamed.String()} {
		got, st := scoreString(t, in, DefaultCSVOptions())
		if strings.Join(st.Columns, ",") != "value" {
			t.Fatalf("%s index: scored columns %v, want [value]", name, st.Columns)
		}
		for i := 1; i < len(got); i++ {
			if got[i][0] != fmt.Sprint(i-1) || got[i][3] != want[i][2] || got[i][4] != want[i][3] {
				t.Fatalf("%s index, row %d: %v, want the index kept and the scores %v", name, i, got[i], want[i])
			}
		}
		if got[1201][4] != "1" {
			t.Errorf("%s index: the spike at row 1200 is not flagged", name)
		}
	}
}
