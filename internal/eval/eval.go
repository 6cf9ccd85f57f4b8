// Package eval measures the quality of an anomaly scorer against a labelled
// corpus (see package simulate): it runs the scorer over every corpus file
// and computes event-level precision, recall and F1, the false-positive
// rate on fault-free files, recall per fault kind, and a windowed
// early-detection score in the style of the Numenta Anomaly Benchmark (NAB).
//
// # Scoring rules
//
// Rows are the scorer's output rows. Labelled windows [start, end) map to
// the rows whose timestamps fall inside; a window's detection range adds
// Tolerance rows after it, and a window with no rows (a dropout) always
// extends to the first row after it. The first rows of each file — the
// probationary period, min(ProbationFraction·rows, ProbationMax) — are not
// scored: flags there are ignored, as a detector is still learning.
//
// Event level: a window is detected when any flagged row falls in its
// detection range. A predicted event is a maximal run of flagged rows, runs
// separated by at most MergeGap unflagged rows merged into one. A predicted
// event that overlaps no detection range is a false positive; one that
// does is a true positive, but each part of it outside every detection
// range that is longer than MergeGap rows counts as one more false positive
// (so flagging everything does not pass for precise). Flags inside the
// widened NAB-style windows (below) are never false positives: an event
// there that overlaps no detection range is early (or late) and is not
// counted. Precision is the share of true predicted events, recall the
// share of windows detected; counts are summed over the corpus before
// dividing. When nothing is predicted, precision is 0.
//
// Row level, as region-labelled benchmarks score a detector: a scored row
// flagged inside a labelled window (no tolerance) is a true positive,
// flagged outside every window a false positive, labelled and not flagged a
// false negative; precision, recall, F1 and the false alarm rate (flagged
// share of unlabelled rows) are computed from the counts summed over the
// corpus.
//
// NAB style: each window is widened, centred on its label, to at least
// 10% of the file's rows divided by the number of windows (overlapping
// widened windows merge) and clipped to the scored rows. Only the first flagged row in a window counts: it
// earns A_TP·σ(y), where y ∈ [-1, 0) is its position relative to the
// window's end in window lengths and σ(y) = 2/(1+e^{5y}) − 1, so an earlier
// detection earns more. Every flagged row outside windows costs A_FP·σ(y),
// with y its distance past the end of the preceding window in that window's
// lengths (σ tends to −1 far from it), or A_FP when no window precedes it.
// Every missed window costs A_FN. Raw scores are summed over the corpus and
// normalised to 0 (the detector that flags nothing) and 100 (the one that
// flags the first row of every window). The profiles weigh A_FP and A_FN as
// NAB's standard, reward-low-FP and reward-low-FN profiles do.
package eval

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// Scorer scores one CSV file: it reads the input (header timestamp and value
// columns) and writes the input's columns plus anomaly_score and is_anomaly,
// one output row per input row. detect.ScoreCSV has this shape.
type Scorer func(ctx context.Context, in io.Reader, out io.Writer) error

// Options sets the scoring rules. The zero value means no tolerance, no
// merging and no probationary period; DefaultOptions gives the usual ones.
type Options struct {
	// Tolerance is the number of rows after a window's end in which a flag
	// still detects it.
	Tolerance int `json:"tolerance"`
	// MergeGap merges flagged runs separated by at most this many unflagged
	// rows into one predicted event.
	MergeGap int `json:"merge_gap"`
	// ProbationFraction and ProbationMax set the probationary period of a
	// file: its first min(ProbationFraction·rows, ProbationMax) rows.
	ProbationFraction float64 `json:"probation_fraction"`
	ProbationMax      int     `json:"probation_max"`
	// Profiles are the NAB-style weightings to compute; nil means
	// DefaultProfiles.
	Profiles []Profile `json:"profiles"`
}

// DefaultOptions returns the scoring rules `vigil eval` uses: tolerance 0,
// merge gap 10 rows, and NAB's probationary period (15%, at most 750 rows).
func DefaultOptions() Options {
	return Options{MergeGap: 10, ProbationFraction: 0.15, ProbationMax: 750, Profiles: DefaultProfiles()}
}

// Profile weighs the NAB-style score: reward of a true positive, cost of a
// false positive row, cost of a missed window.
type Profile struct {
	Name string  `json:"name"`
	TP   float64 `json:"tp"`
	FP   float64 `json:"fp"`
	FN   float64 `json:"fn"`
}

// DefaultProfiles returns NAB's three application profiles.
func DefaultProfiles() []Profile {
	return []Profile{
		{Name: "standard", TP: 1, FP: 0.11, FN: 1},
		{Name: "low_fp", TP: 1, FP: 0.22, FN: 1},
		{Name: "low_fn", TP: 1, FP: 0.11, FN: 2},
	}
}

func (o Options) profiles() []Profile {
	if o.Profiles == nil {
		return DefaultProfiles()
	}
	return o.Profiles
}

func (o Options) probation(n int) int {
	p := int(math.Floor(o.ProbationFraction * float64(n)))
	if o.ProbationMax > 0 {
		p = min(p, o.ProbationMax)
	}
	return min(max(p, 0), n)
}

// RowRange is the half-open range of rows [From, To).
type RowRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// WindowResult is the outcome for one labelled window.
type WindowResult struct {
	Kind    simulate.Kind `json:"kind"`
	Columns []string      `json:"columns"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end"`
	// Rows is the detection range (labelled rows plus tolerance).
	Rows     RowRange `json:"rows"`
	Detected bool     `json:"detected"`
	// Delay is the number of rows from the window's first row to the first
	// flagged row in its detection range (0 when not detected).
	Delay int `json:"delay_rows"`
}

// NABRaw is the raw NAB-style score of one file under one profile, with
// the scores of the null and the perfect detector to normalise it.
type NABRaw struct {
	Profile string  `json:"profile"`
	Score   float64 `json:"score"`
	Null    float64 `json:"null"`
	Perfect float64 `json:"perfect"`
}

// FileResult is the outcome for one corpus file.
type FileResult struct {
	File string `json:"file"`
	Rows int    `json:"rows"`
	// Scored is the number of rows after the probationary period.
	Scored int `json:"scored"`
	// Clean reports a file without labelled windows.
	Clean   bool           `json:"clean"`
	Windows []WindowResult `json:"windows"`
	// NABWindows are the widened windows of the NAB-style score.
	NABWindows []RowRange `json:"nab_windows"`
	// Flagged counts the flagged rows after the probationary period.
	Flagged int `json:"flagged"`
	// Events, TPEvents and FPEvents count predicted events, those that
	// overlap a window and those that overlap none.
	Events   int      `json:"events"`
	TPEvents int      `json:"tp_events"`
	FPEvents int      `json:"fp_events"`
	NAB      []NABRaw `json:"nab"`
	// Rows at row level, after the probationary period, as region-labelled
	// benchmarks score them: RowTP flagged and labelled (inside a window,
	// without tolerance), RowFP flagged outside every window, RowFN
	// labelled and not flagged.
	RowTP int `json:"row_tp"`
	RowFP int `json:"row_fp"`
	RowFN int `json:"row_fn"`
	// Elapsed is the time the scorer took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Detected returns the number of detected windows.
func (r FileResult) Detected() int {
	n := 0
	for _, w := range r.Windows {
		if w.Detected {
			n++
		}
	}
	return n
}

// EvaluateFile scores one file's scorer output s against its labels. It
// fails (wrapping ErrBadOutput) when the row counts differ.
func EvaluateFile(fl simulate.FileLabels, s Scored, opts Options) (FileResult, error) {
	n := s.Len()
	if len(s.Flags) != n || len(s.Scores) != n {
		return FileResult{}, fmt.Errorf("evaluate %s: %w: %d timestamps, %d scores, %d flags", fl.File, ErrBadOutput, n, len(s.Scores), len(s.Flags))
	}
	if n != fl.Rows {
		return FileResult{}, fmt.Errorf("evaluate %s: %w: %d output rows for %d input rows", fl.File, ErrBadOutput, n, fl.Rows)
	}
	p := opts.probation(n)
	flags := slices.Clone(s.Flags)
	for i := range p {
		flags[i] = false
	}
	res := FileResult{File: fl.File, Rows: n, Scored: n - p, Clean: len(fl.Windows) == 0}
	for _, f := range flags {
		if f {
			res.Flagged++
		}
	}

	// Windows → detection ranges.
	labelled := make([]RowRange, 0, len(fl.Windows))
	for _, w := range fl.Windows {
		from := lowerBound(s.Times, w.Start.UnixMilli())
		to := lowerBound(s.Times, w.End.UnixMilli())
		ext := opts.Tolerance
		if to == from {
			ext = max(ext, 1)
		}
		rr := RowRange{From: from, To: min(to+ext, n)}
		labelled = append(labelled, RowRange{From: from, To: min(max(to, from+1), n)})
		wr := WindowResult{Kind: w.Kind, Columns: w.Columns, Start: w.Start, End: w.End, Rows: rr}
		for i := max(rr.From, p); i < rr.To; i++ {
			if flags[i] {
				wr.Detected, wr.Delay = true, i-rr.From
				break
			}
		}
		res.Windows = append(res.Windows, wr)
	}

	// Row level.
	inWindow := make([]bool, n)
	for _, w := range labelled {
		for i := w.From; i < w.To; i++ {
			inWindow[i] = true
		}
	}
	for i := p; i < n; i++ {
		switch {
		case flags[i] && inWindow[i]:
			res.RowTP++
		case flags[i]:
			res.RowFP++
		case inWindow[i]:
			res.RowFN++
		}
	}

	// NAB-style windows; flags inside them are never false at event level.
	res.NABWindows = nabWindows(labelled, n, opts.Tolerance, p)

	// Predicted events.
	inRange := make([]bool, n) // in a detection range
	covered := make([]bool, n) // in a detection range or a NAB window
	for _, w := range res.Windows {
		for i := w.Rows.From; i < w.Rows.To; i++ {
			inRange[i], covered[i] = true, true
		}
	}
	for _, w := range res.NABWindows {
		for i := w.From; i < w.To; i++ {
			covered[i] = true
		}
	}
	for _, ev := range events(flags, opts.MergeGap) {
		tp, fp := classify(ev, inRange, covered, opts.MergeGap)
		res.TPEvents += tp
		res.FPEvents += fp
	}
	res.Events = res.TPEvents + res.FPEvents

	// NAB-style score.
	for _, pr := range opts.profiles() {
		res.NAB = append(res.NAB, nabScore(flags, res.NABWindows, p, pr))
	}
	return res, nil
}

// lowerBound returns the index of the first time >= t.
func lowerBound(times []int64, t int64) int {
	return sort.Search(len(times), func(i int) bool { return times[i] >= t })
}

// events returns the maximal runs of set flags, merging runs separated by at
// most gap unset flags.
func events(flags []bool, gap int) []RowRange {
	var out []RowRange
	for i := 0; i < len(flags); i++ {
		if !flags[i] {
			continue
		}
		j := i
		for j < len(flags) && flags[j] {
			j++
		}
		if k := len(out) - 1; k >= 0 && i-out[k].To <= gap {
			out[k].To = j
		} else {
			out = append(out, RowRange{From: i, To: j})
		}
		i = j
	}
	return out
}

// classify counts the true and false predicted events in event ev. An
// event that overlaps a detection range is one true event, and each part of
// it outside every detection range and NAB window that is longer than
// slack rows is one more, false, event. An event that overlaps no detection
// range is one false event, unless it lies wholly inside NAB windows (an
// early detection, rewarded by the NAB-style score): then it is not counted.
func classify(ev RowRange, inRange, covered []bool, slack int) (tp, fp int) {
	var parts, longParts int
	for i := ev.From; i < ev.To; i++ {
		if inRange[i] {
			tp = 1
		}
		if covered[i] {
			continue
		}
		j := i
		for j < ev.To && !covered[j] {
			j++
		}
		parts++
		if j-i > slack {
			longParts++
		}
		i = j - 1
	}
	if tp == 0 {
		return 0, min(parts, 1)
	}
	return tp, longParts
}

// nabWindows widens labelled row ranges, centred on each, to at least 10% of
// n divided by their number, extends them by tol rows, clips them to the
// scored rows [p, n) and merges overlaps. Windows wholly in the
// probationary period are dropped.
func nabWindows(labelled []RowRange, n, tol, p int) []RowRange {
	if len(labelled) == 0 {
		return nil
	}
	w := int(0.1 * float64(n) / float64(len(labelled)))
	var out []RowRange
	for _, l := range labelled {
		r := RowRange{From: l.From, To: l.To + tol}
		if L := r.To - r.From; L < w {
			left := (w - L) / 2
			r.From -= left
			r.To += w - L - left
		}
		r.From = max(r.From, p, 0)
		r.To = min(r.To, n)
		if r.To <= r.From {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RowRange) int { return a.From - b.From })
	merged := out[:0]
	for _, r := range out {
		if k := len(merged) - 1; k >= 0 && r.From <= merged[k].To {
			merged[k].To = max(merged[k].To, r.To)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// sigma is NAB's scaled sigmoid: 2/(1+e^{5y}) − 1, in (−1, 1); −1 beyond 3.
func sigma(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// nabScore computes the raw, null and perfect NAB-style scores of flags
// (already cleared before p) against windows (sorted, disjoint, >= p).
func nabScore(flags []bool, windows []RowRange, p int, pr Profile) NABRaw {
	res := NABRaw{Profile: pr.Name}
	for range windows {
		res.Null -= pr.FN
		res.Perfect += pr.TP * sigma(-1)
	}
	wi := 0 // index of the first window not ended before i
	detected := make([]bool, len(windows))
	for i := p; i < len(flags); i++ {
		for wi < len(windows) && windows[wi].To <= i {
			wi++
		}
		if !flags[i] {
			continue
		}
		if wi < len(windows) && windows[wi].From <= i {
			w := windows[wi]
			if !detected[wi] {
				detected[wi] = true
				y := -float64(w.To-i) / float64(w.To-w.From)
				res.Score += pr.TP * sigma(y)
			}
			continue
		}
		if wi == 0 {
			res.Score -= pr.FP
			continue
		}
		prev := windows[wi-1]
		y := float64(i-(prev.To-1)) / float64(prev.To-prev.From)
		res.Score += pr.FP * sigma(y)
	}
	for _, d := range detected {
		if !d {
			res.Score -= pr.FN
		}
	}
	return res
}

// LoadLabels reads dir's labels file.
func LoadLabels(dir string) (simulate.Labels, error) {
	f, err := os.Open(filepath.Join(dir, simulate.LabelsFile))
	if err != nil {
		return simulate.Labels{}, fmt.Errorf("load corpus labels: %w", err)
	}
	defer f.Close()
	l, err := simulate.ReadLabels(f)
	if err != nil {
		return simulate.Labels{}, fmt.Errorf("load corpus labels %s: %w", f.Name(), err)
	}
	return l, nil
}

// Filter returns the labels of the files whose names match the
// filepath.Match pattern; an empty pattern keeps every file.
func Filter(l simulate.Labels, pattern string) (simulate.Labels, error) {
	if pattern == "" {
		return l, nil
	}
	out := l
	out.Files = nil
	for _, f := range l.Files {
		ok, err := filepath.Match(pattern, f.File)
		if err != nil {
			return simulate.Labels{}, fmt.Errorf("filter corpus files by %q: %w", pattern, err)
		}
		if ok {
			out.Files = append(out.Files, f)
		}
	}
	if len(out.Files) == 0 {
		return simulate.Labels{}, fmt.Errorf("filter corpus files by %q: no file matches", pattern)
	}
	return out, nil
}

// Progress is called after each file is evaluated: i of n files done.
type Progress func(i, n int, r FileResult)

// Run scores every file of the corpus in dir, described by labels, with
// scorer, and returns the report. It stops at the first scorer failure or
// malformed output, naming the file.
func Run(ctx context.Context, dir string, labels simulate.Labels, scorer Scorer, opts Options, progress Progress) (Report, error) {
	return RunSplit(ctx, dir, labels, scorer, nil, opts, progress)
}

// RunSplit is Run with a second scorer for the row-level counts: events
// scores alarms (its flagged rows make the predicted events and the
// NAB-style score) and rows, when not nil, flags the rows an alarm covers
// (its flagged rows make RowTP, RowFP and RowFN). A detector that reports
// an alarm once but holds it over a region (detect.CSVOptions.
// HoldDeviceAlarms) is scored both ways: by its alarms at event level, by
// the regions they cover at row level.
func RunSplit(ctx context.Context, dir string, labels simulate.Labels, events, rows Scorer, opts Options, progress Progress) (Report, error) {
	var files []FileResult
	var out bytes.Buffer
	for i, fl := range labels.Files {
		if err := ctx.Err(); err != nil {
			return Report{}, fmt.Errorf("eval %s: %w", dir, err)
		}
		r, err := runFile(ctx, dir, fl, events, opts, &out)
		if err != nil {
			return Report{}, fmt.Errorf("eval %s: %w", dir, err)
		}
		if rows != nil {
			rr, err := runFile(ctx, dir, fl, rows, opts, &out)
			if err != nil {
				return Report{}, fmt.Errorf("eval %s (rows): %w", dir, err)
			}
			r.RowTP, r.RowFP, r.RowFN = rr.RowTP, rr.RowFP, rr.RowFN
		}
		files = append(files, r)
		if progress != nil {
			progress(i+1, len(labels.Files), r)
		}
	}
	return NewReport(files, opts), nil
}

func runFile(ctx context.Context, dir string, fl simulate.FileLabels, scorer Scorer, opts Options, out *bytes.Buffer) (FileResult, error) {
	f, err := os.Open(filepath.Join(dir, fl.File))
	if err != nil {
		return FileResult{}, fmt.Errorf("score %s: %w", fl.File, err)
	}
	defer f.Close()
	out.Reset()
	start := time.Now()
	if err := scorer(ctx, f, out); err != nil {
		return FileResult{}, fmt.Errorf("score %s: %w", fl.File, err)
	}
	elapsed := time.Since(start)
	s, err := ReadScored(out)
	if err != nil {
		return FileResult{}, fmt.Errorf("score %s: %w", fl.File, err)
	}
	r, err := EvaluateFile(fl, s, opts)
	if err != nil {
		return FileResult{}, err
	}
	r.Elapsed = elapsed
	return r, nil
}
