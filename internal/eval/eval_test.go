package eval

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-iot/vigil/internal/simulate"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// rowsAt returns n timestamps one second apart from t0.
func rowsAt(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = t0.Add(time.Duration(i) * time.Second).UnixMilli()
	}
	return out
}

func scoredWith(n int, flagged ...int) Scored {
	s := Scored{Times: rowsAt(n), Scores: make([]float64, n), Flags: make([]bool, n)}
	for _, i := range flagged {
		s.Flags[i], s.Scores[i] = true, 1
	}
	return s
}

func window(k simulate.Kind, from, to int) simulate.Window {
	return simulate.Window{Kind: k, Columns: []string{"v"}, Start: t0.Add(time.Duration(from) * time.Second), End: t0.Add(time.Duration(to) * time.Second)}
}

// nabSigma is the scaled sigmoid written out again, independently.
func nabSigma(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }

// span returns the rows [from, to).
func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestEvaluateFileHandComputed(t *testing.T) {
	fl := simulate.FileLabels{File: "f.csv", Rows: 100, Columns: []string{"v"}, Windows: []simulate.Window{window(simulate.LevelShift, 40, 45)}}
	// Flags: 10 (before any window), 40,41,43 (inside), 60 (after).
	s := scoredWith(100, 10, 40, 41, 43, 60)
	got, err := EvaluateFile(fl, s, Options{MergeGap: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 3 || got.TPEvents != 1 || got.FPEvents != 2 || got.Flagged != 5 {
		t.Errorf("events %d tp %d fp %d flagged %d, want 3 1 2 5", got.Events, got.TPEvents, got.FPEvents, got.Flagged)
	}
	if !got.Windows[0].Detected || got.Windows[0].Delay != 0 || got.Windows[0].Rows != (RowRange{40, 45}) {
		t.Errorf("window %+v, want detected with delay 0 over rows [40,45)", got.Windows[0])
	}
	// Label [40,45) (5 rows) widened to 10% of 100 rows: [38,48).
	if diff := cmp.Diff([]RowRange{{38, 48}}, got.NABWindows); diff != "" {
		t.Errorf("NAB windows (-want +got):\n%s", diff)
	}
	first := nabSigma(-8.0 / 10)        // row 40, 8 rows before the end of a 10-row window
	after := nabSigma((60.0 - 47) / 10) // row 60, 13 rows past the last row of the window
	want := map[string]float64{
		"standard": first + 0.11*after - 0.11,
		"low_fp":   first + 0.22*after - 0.22,
		"low_fn":   first + 0.11*after - 0.11,
	}
	for _, r := range got.NAB {
		if !near(r.Score, want[r.Profile]) {
			t.Errorf("profile %s: raw %v, want %v", r.Profile, r.Score, want[r.Profile])
		}
		fn := 1.0
		if r.Profile == "low_fn" {
			fn = 2
		}
		if !near(r.Null, -fn) || !near(r.Perfect, nabSigma(-1)) {
			t.Errorf("profile %s: null %v perfect %v, want %v %v", r.Profile, r.Null, r.Perfect, -fn, nabSigma(-1))
		}
	}
}

func TestEvaluateFileRules(t *testing.T) {
	tests := []struct {
		name     string
		windows  []simulate.Window
		flagged  []int
		opts     Options
		detected []bool
		events   int
		fp       int
	}{
		{name: "no flags", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, detected: []bool{false}},
		{name: "flag just after window without tolerance is late, not false", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, flagged: []int{51}, detected: []bool{false}},
		{name: "flag far from window is false", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, flagged: []int{90}, detected: []bool{false}, events: 1, fp: 1},
		{name: "flag inside NAB window before label is early, not false", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, flagged: []int{46}, detected: []bool{false}},
		{name: "flag just after window with tolerance", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, flagged: []int{52}, opts: Options{Tolerance: 2}, detected: []bool{true}, events: 1},
		{name: "empty dropout window detected by next row", windows: []simulate.Window{window(simulate.Dropout, 50, 50)}, flagged: []int{50}, detected: []bool{true}, events: 1},
		{name: "empty dropout window not by the row after next", windows: []simulate.Window{window(simulate.Dropout, 50, 50)}, flagged: []int{51}, detected: []bool{false}},
		{name: "runs merged within gap", windows: []simulate.Window{window(simulate.Stuck, 50, 60)}, flagged: []int{55, 58, 62}, opts: Options{MergeGap: 3}, detected: []bool{true}, events: 1},
		{name: "runs not merged beyond gap", windows: []simulate.Window{window(simulate.Stuck, 50, 60)}, flagged: []int{55, 58, 63}, opts: Options{MergeGap: 3}, detected: []bool{true}, events: 2, fp: 1},
		{name: "long tail after window is a false event", windows: []simulate.Window{window(simulate.LevelShift, 50, 60)}, flagged: span(50, 81), opts: Options{MergeGap: 3}, detected: []bool{true}, events: 2, fp: 1},
		{name: "short tail after window absorbed", windows: []simulate.Window{window(simulate.LevelShift, 50, 60)}, flagged: span(50, 63), opts: Options{MergeGap: 3}, detected: []bool{true}, events: 1},
		{name: "flag all around two windows", windows: []simulate.Window{window(simulate.Spike, 30, 31), window(simulate.Spike, 60, 62)}, flagged: span(0, 100), detected: []bool{true, true}, events: 4, fp: 3},
		{name: "probation ignores early flags", windows: []simulate.Window{window(simulate.Spike, 50, 51)}, flagged: []int{3, 50}, opts: Options{ProbationFraction: 0.1}, detected: []bool{true}, events: 1},
		{name: "clean file", flagged: []int{20, 21, 80}, events: 2, fp: 2},
		{name: "two windows one event", windows: []simulate.Window{window(simulate.Spike, 50, 51), window(simulate.Spike, 53, 54)}, flagged: []int{50, 51, 52, 53}, opts: Options{MergeGap: 2}, detected: []bool{true, true}, events: 1},
		{name: "gap between windows is outside", windows: []simulate.Window{window(simulate.Spike, 50, 51), window(simulate.Spike, 60, 61)}, flagged: span(50, 61), opts: Options{MergeGap: 2}, detected: []bool{true, true}, events: 2, fp: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := simulate.FileLabels{File: "f.csv", Rows: 100, Columns: []string{"v"}, Windows: tt.windows}
			got, err := EvaluateFile(fl, scoredWith(100, tt.flagged...), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var det []bool
			for _, w := range got.Windows {
				det = append(det, w.Detected)
			}
			if diff := cmp.Diff(tt.detected, det); diff != "" {
				t.Errorf("detected (-want +got):\n%s", diff)
			}
			if got.Events != tt.events || got.FPEvents != tt.fp {
				t.Errorf("events %d fp %d, want %d %d", got.Events, got.FPEvents, tt.events, tt.fp)
			}
		})
	}
}

func TestEvaluateFileRowMismatch(t *testing.T) {
	fl := simulate.FileLabels{File: "f.csv", Rows: 10, Columns: []string{"v"}}
	if _, err := EvaluateFile(fl, scoredWith(9), Options{}); !errors.Is(err, ErrBadOutput) {
		t.Errorf("9 rows for 10: got %v, want ErrBadOutput", err)
	}
}

func TestNABWindows(t *testing.T) {
	tests := []struct {
		name     string
		labelled []RowRange
		n, tol   int
		p        int
		want     []RowRange
	}{
		{name: "widened and centred", labelled: []RowRange{{100, 102}}, n: 1000, want: []RowRange{{51, 151}}},
		{name: "long label kept", labelled: []RowRange{{100, 300}}, n: 1000, want: []RowRange{{100, 300}}},
		{name: "tolerance extends", labelled: []RowRange{{100, 300}}, n: 1000, tol: 5, want: []RowRange{{100, 305}}},
		{name: "clipped to file", labelled: []RowRange{{990, 995}}, n: 1000, want: []RowRange{{943, 1000}}},
		{name: "overlaps merge", labelled: []RowRange{{100, 101}, {120, 121}}, n: 1000, want: []RowRange{{76, 146}}},
		{name: "probation clips and drops", labelled: []RowRange{{10, 11}, {500, 501}}, n: 1000, p: 100, want: []RowRange{{476, 526}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nabWindows(tt.labelled, tt.n, tt.tol, tt.p)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("nabWindows(%v, n=%d) (-want +got):\n%s", tt.labelled, tt.n, diff)
			}
		})
	}
}

// flagScorer returns a Scorer that copies its input CSV and adds the score
// columns, flagging the rows for which flag(file, row, time) is true. The
// file index counts the calls, as Run scores files in labels order.
func flagScorer(flag func(file, row int, ms int64) bool) Scorer {
	file := -1
	return func(ctx context.Context, in io.Reader, out io.Writer) error {
		file++
		cr := csv.NewReader(in)
		bw := bufio.NewWriter(out)
		cw := csv.NewWriter(bw)
		header, err := cr.Read()
		if err != nil {
			return err
		}
		if err := cw.Write(append(header, "anomaly_score", "is_anomaly")); err != nil {
			return err
		}
		for row := 0; ; row++ {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			ts, err := time.Parse(time.RFC3339Nano, rec[0])
			if err != nil {
				return err
			}
			v := []string{"0", "0"}
			if flag(file, row, ts.UnixMilli()) {
				v = []string{"1", "1"}
			}
			if err := cw.Write(append(rec, v...)); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		return bw.Flush()
	}
}

// smallCorpus writes a short corpus for tests.
func smallCorpus(t *testing.T) (string, simulate.Labels) {
	t.Helper()
	dir := t.TempDir()
	l, err := simulate.WriteCorpus(t.Context(), dir, simulate.CorpusOptions{
		Seed: 7, MinRows: 1000, MaxRows: 1500, Intervals: []time.Duration{time.Second, 5 * time.Minute}, Clean: 1, DeviceFiles: 2,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, l
}

func TestRunScorers(t *testing.T) {
	dir, labels := smallCorpus(t)
	opts := DefaultOptions()
	run := func(t *testing.T, s Scorer) Report {
		t.Helper()
		r, err := Run(t.Context(), dir, labels, s, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	zero := run(t, flagScorer(func(int, int, int64) bool { return false }))
	t.Run("all zero", func(t *testing.T) {
		s := zero.Summary
		if s.F1 != 0 || s.Recall != 0 || s.Events != 0 || s.CleanFPPer100k != 0 {
			t.Errorf("F1 %v recall %v events %d clean FP %v, want all 0", s.F1, s.Recall, s.Events, s.CleanFPPer100k)
		}
		for _, n := range s.NAB {
			if n.Score != 0 {
				t.Errorf("NAB %s = %v, want 0", n.Profile, n.Score)
			}
		}
		if s.Windows < 20 {
			t.Errorf("corpus has %d windows, want at least 20", s.Windows)
		}
	})
	// inWindow reports whether ms falls in a labelled window of the file
	// (or is the first row after an empty one).
	inLabel := func(file, row int, ms int64) bool {
		for _, w := range labels.Files[file].Windows {
			if ms >= w.Start.UnixMilli() && ms < w.End.UnixMilli() {
				return true
			}
		}
		for _, w := range zero.Files[file].Windows {
			if w.Rows.From == row {
				return true
			}
		}
		return false
	}
	t.Run("label oracle", func(t *testing.T) {
		s := run(t, flagScorer(inLabel)).Summary
		if s.F1 != 1 || s.Precision != 1 || s.Recall != 1 || s.CleanFPEvents != 0 {
			t.Errorf("precision %v recall %v F1 %v clean FP %d, want 1 1 1 0", s.Precision, s.Recall, s.F1, s.CleanFPEvents)
		}
		for _, k := range s.Kinds {
			if k.Recall != 1 {
				t.Errorf("kind %s recall %v, want 1", k.Kind, k.Recall)
			}
		}
		if len(s.Kinds) != len(simulate.Kinds()) {
			t.Errorf("%d kinds in the corpus, want all %d", len(s.Kinds), len(simulate.Kinds()))
		}
		for _, n := range s.NAB {
			// Flags start at the label, inside the widened window: less
			// than perfect, well above null.
			if n.Score <= 50 || n.Score >= 100 {
				t.Errorf("NAB %s = %v, want in (50, 100)", n.Profile, n.Score)
			}
		}
	})
	t.Run("perfect oracle", func(t *testing.T) {
		// Flags from the start of each widened window through the label.
		perfect := func(file, row int, ms int64) bool {
			if inLabel(file, row, ms) {
				return true
			}
			f := zero.Files[file]
			for _, nw := range f.NABWindows {
				for _, w := range f.Windows {
					if row >= nw.From && row < w.Rows.From && w.Rows.From >= nw.From && w.Rows.From < nw.To {
						return true
					}
				}
			}
			return false
		}
		s := run(t, flagScorer(perfect)).Summary
		if s.F1 != 1 {
			t.Errorf("F1 %v, want 1", s.F1)
		}
		for _, n := range s.NAB {
			if !near(n.Score, 100) {
				t.Errorf("NAB %s = %v, want 100", n.Profile, n.Score)
			}
		}
	})
	t.Run("flag everything", func(t *testing.T) {
		s := run(t, flagScorer(func(int, int, int64) bool { return true })).Summary
		if s.Recall != 1 {
			t.Errorf("recall %v, want 1", s.Recall)
		}
		if s.Precision > 0.5 {
			t.Errorf("precision %v, want low (<= 0.5)", s.Precision)
		}
		for _, n := range s.NAB {
			if n.Score >= 0 {
				t.Errorf("NAB %s = %v, want negative", n.Profile, n.Score)
			}
		}
	})
}

func TestRunScorerFailure(t *testing.T) {
	dir, labels := smallCorpus(t)
	boom := errors.New("boom")
	_, err := Run(t.Context(), dir, labels, func(context.Context, io.Reader, io.Writer) error { return boom }, DefaultOptions(), nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), labels.Files[0].File) {
		t.Errorf("got %v, want the scorer's error naming %s", err, labels.Files[0].File)
	}
	short := func(_ context.Context, in io.Reader, out io.Writer) error {
		_, err := fmt.Fprintln(out, "timestamp,v,anomaly_score,is_anomaly")
		return err
	}
	if _, err := Run(t.Context(), dir, labels, short, DefaultOptions(), nil); !errors.Is(err, ErrBadOutput) {
		t.Errorf("scorer writing no rows: got %v, want ErrBadOutput", err)
	}
}

func TestReadScored(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Scored
		err  bool
	}{
		{name: "ok any column order", in: "is_anomaly,timestamp,v,anomaly_score\n1,2026-01-05T00:00:00Z,3,0.9\n0,2026-01-05T00:00:01.5Z,3,0.1\n",
			want: Scored{Times: []int64{t0.UnixMilli(), t0.UnixMilli() + 1500}, Scores: []float64{0.9, 0.1}, Flags: []bool{true, false}}},
		{name: "missing column", in: "timestamp,v,anomaly_score\n", err: true},
		{name: "bad timestamp", in: "timestamp,anomaly_score,is_anomaly\nyesterday,0,0\n", err: true},
		{name: "score out of range", in: "timestamp,anomaly_score,is_anomaly\n2026-01-05T00:00:00Z,1.5,0\n", err: true},
		{name: "bad flag", in: "timestamp,anomaly_score,is_anomaly\n2026-01-05T00:00:00Z,0.5,2\n", err: true},
		{name: "time goes back", in: "timestamp,anomaly_score,is_anomaly\n2026-01-05T00:00:01Z,0,0\n2026-01-05T00:00:00Z,0,0\n", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadScored(strings.NewReader(tt.in))
			if tt.err {
				if !errors.Is(err, ErrBadOutput) {
					t.Errorf("ReadScored(%q): got %v, want ErrBadOutput", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadScored(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzReadScored(f *testing.F) {
	f.Add("timestamp,v,anomaly_score,is_anomaly\n2026-01-05T00:00:00Z,1,0.5,1\n")
	f.Add("timestamp,anomaly_score,is_anomaly\n2026-01-05T00:00:00.123+02:00,0,false\n")
	f.Add("timestamp,anomaly_score,is_anomaly\n\"2026-01-05T00:00:00Z\",1e-3,true\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadScored(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadOutput) {
				t.Errorf("error %v does not wrap ErrBadOutput", err)
			}
			return
		}
		if len(s.Flags) != len(s.Times) || len(s.Scores) != len(s.Times) {
			t.Fatalf("lengths %d %d %d differ", len(s.Times), len(s.Scores), len(s.Flags))
		}
		for i := range s.Times {
			if s.Scores[i] < 0 || s.Scores[i] > 1 || (i > 0 && s.Times[i] < s.Times[i-1]) {
				t.Fatalf("row %d: score %v time %d after %d", i, s.Scores[i], s.Times[i], s.Times[max(i-1, 0)])
			}
		}
		fl := simulate.FileLabels{File: "f", Rows: s.Len(), Columns: []string{"v"}, Windows: []simulate.Window{{Kind: simulate.Spike, Start: t0, End: t0.Add(time.Second)}}}
		if _, err := EvaluateFile(fl, s, DefaultOptions()); err != nil {
			t.Fatalf("EvaluateFile: %v", err)
		}
	})
}

func TestFilter(t *testing.T) {
	l := simulate.Labels{Version: 1, Files: []simulate.FileLabels{{File: "uni_1s_spike_1.csv"}, {File: "device_1m_01.csv"}, {File: "device_5m_02.csv"}}}
	tests := []struct {
		pattern string
		want    []string
		err     bool
	}{
		{pattern: "", want: []string{"uni_1s_spike_1.csv", "device_1m_01.csv", "device_5m_02.csv"}},
		{pattern: "device_*", want: []string{"device_1m_01.csv", "device_5m_02.csv"}},
		{pattern: "clean_*", err: true},
		{pattern: "[", err: true},
	}
	for _, tt := range tests {
		got, err := Filter(l, tt.pattern)
		if tt.err {
			if err == nil {
				t.Errorf("Filter(%q): no error, want one", tt.pattern)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Filter(%q): %v", tt.pattern, err)
		}
		var names []string
		for _, f := range got.Files {
			names = append(names, f.File)
		}
		if diff := cmp.Diff(tt.want, names); diff != "" {
			t.Errorf("Filter(%q) (-want +got):\n%s", tt.pattern, diff)
		}
	}
}

// Row level counts flagged and labelled rows after the probationary period,
// windows without tolerance; the report sums them before dividing.
func TestRowLevel(t *testing.T) {
	const n = 1000
	fl := simulate.FileLabels{File: "f.csv", Rows: n, Columns: []string{"v"},
		Windows: []simulate.Window{window(simulate.LevelShift, 400, 500), window(simulate.NoiseBurst, 700, 720)}}
	// 60 rows inside the first window, 10 after it (false even with a
	// tolerance), 5 in the probation (ignored), 25 elsewhere.
	flagged := append(append(span(450, 510), span(0, 5)...), span(800, 825)...)
	opts := Options{ProbationFraction: 0.1, Tolerance: 20}
	r, err := EvaluateFile(fl, scoredWith(n, flagged...), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.RowTP != 50 || r.RowFP != 35 || r.RowFN != 70 {
		t.Fatalf("rows tp %d fp %d fn %d, want 50 35 70", r.RowTP, r.RowFP, r.RowFN)
	}
	s := NewReport([]FileResult{r, r}, opts).Summary
	p, rc := 50.0/85, 50.0/120
	if !near(s.RowPrecision, p) || !near(s.RowRecall, rc) || !near(s.RowF1, 2*p*rc/(p+rc)) || !near(s.RowFAR, 70.0/(2*900-240)) {
		t.Fatalf("row P/R/F1/FAR %v %v %v %v", s.RowPrecision, s.RowRecall, s.RowF1, s.RowFAR)
	}
}

// RunSplit takes events and the NAB-style score from the first scorer and
// the row-level counts from the second.
func TestRunSplit(t *testing.T) {
	dir, labels := smallCorpus(t)
	opts := DefaultOptions()
	none := flagScorer(func(int, int, int64) bool { return false })
	all := flagScorer(func(int, int, int64) bool { return true })
	split, err := RunSplit(t.Context(), dir, labels, none, all, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	flagsAll, err := Run(t.Context(), dir, labels, flagScorer(func(int, int, int64) bool { return true }), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, a := split.Summary, flagsAll.Summary
	if s.Events != 0 || s.Detected != 0 {
		t.Errorf("events %d detected %d, want none from the events scorer", s.Events, s.Detected)
	}
	if s.RowRecall != 1 || s.RowPrecision != a.RowPrecision || s.RowF1 != a.RowF1 || s.RowFAR != 1 {
		t.Errorf("row level %+v, want that of flagging every row %+v", s, a)
	}
}
