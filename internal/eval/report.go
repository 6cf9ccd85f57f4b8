package eval

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// Report is the outcome of an evaluation: per file results and the corpus
// summary. It encodes as JSON so results can be tracked over time.
type Report struct {
	Options Options      `json:"options"`
	Summary Summary      `json:"summary"`
	Files   []FileResult `json:"files"`
}

// Summary aggregates file results over the corpus.
type Summary struct {
	Files     int `json:"files"`
	Rows      int `json:"rows"`
	Scored    int `json:"scored_rows"`
	CleanRows int `json:"clean_scored_rows"`
	Windows   int `json:"windows"`
	Detected  int `json:"detected"`
	Events    int `json:"events"`
	TPEvents  int `json:"tp_events"`
	FPEvents  int `json:"fp_events"`
	// CleanFPEvents counts the predicted events in fault-free files.
	CleanFPEvents int     `json:"clean_fp_events"`
	Precision     float64 `json:"precision"`
	Recall        float64 `json:"recall"`
	F1            float64 `json:"f1"`
	// CleanFPPer100k is the false-positive events per 100,000 scored rows
	// of the fault-free files; FPPer100k the same over every file.
	CleanFPPer100k float64 `json:"clean_fp_per_100k"`
	FPPer100k      float64 `json:"fp_per_100k"`
	// RowPrecision, RowRecall and RowF1 score flagged rows against labelled
	// rows (FileResult.RowTP, RowFP, RowFN summed over the corpus); RowFAR
	// is the share of unlabelled scored rows flagged.
	RowPrecision float64 `json:"row_precision"`
	RowRecall    float64 `json:"row_recall"`
	RowF1        float64 `json:"row_f1"`
	RowFAR       float64 `json:"row_far"`
	// MeanDelay is the mean detection delay, in rows, of detected windows.
	MeanDelay float64     `json:"mean_delay_rows"`
	NAB       []NABScore  `json:"nab"`
	Kinds     []KindScore `json:"kinds"`
	// Elapsed is the total scorer time; RowsPerSecond the throughput.
	Elapsed       time.Duration `json:"elapsed_ns"`
	RowsPerSecond float64       `json:"rows_per_second"`
}

// NABScore is a profile's NAB-style score over the corpus: Score is
// normalised (0 = flags nothing, 100 = perfect), Raw the summed raw score.
type NABScore struct {
	Profile string  `json:"profile"`
	Score   float64 `json:"score"`
	Raw     float64 `json:"raw"`
	Null    float64 `json:"null"`
	Perfect float64 `json:"perfect"`
}

// KindScore is the recall of one fault kind.
type KindScore struct {
	Kind     simulate.Kind `json:"kind"`
	Windows  int           `json:"windows"`
	Detected int           `json:"detected"`
	Recall   float64       `json:"recall"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// NewReport summarises file results.
func NewReport(files []FileResult, opts Options) Report {
	s := Summary{Files: len(files)}
	kinds := map[simulate.Kind]*KindScore{}
	nab := map[string]*NABScore{}
	var delays, rowTP, rowFP, rowFN int
	for _, f := range files {
		rowTP, rowFP, rowFN = rowTP+f.RowTP, rowFP+f.RowFP, rowFN+f.RowFN
		s.Rows += f.Rows
		s.Scored += f.Scored
		s.Events += f.Events
		s.TPEvents += f.TPEvents
		s.FPEvents += f.FPEvents
		s.Elapsed += f.Elapsed
		if f.Clean {
			s.CleanRows += f.Scored
			s.CleanFPEvents += f.FPEvents
		}
		for _, w := range f.Windows {
			s.Windows++
			k := kinds[w.Kind]
			if k == nil {
				k = &KindScore{Kind: w.Kind}
				kinds[w.Kind] = k
			}
			k.Windows++
			if w.Detected {
				s.Detected++
				k.Detected++
				delays += w.Delay
			}
		}
		for _, r := range f.NAB {
			n := nab[r.Profile]
			if n == nil {
				n = &NABScore{Profile: r.Profile}
				nab[r.Profile] = n
			}
			n.Raw += r.Score
			n.Null += r.Null
			n.Perfect += r.Perfect
		}
	}
	s.Precision = ratio(float64(s.TPEvents), float64(s.Events))
	s.Recall = ratio(float64(s.Detected), float64(s.Windows))
	s.F1 = ratio(2*s.Precision*s.Recall, s.Precision+s.Recall)
	s.CleanFPPer100k = ratio(1e5*float64(s.CleanFPEvents), float64(s.CleanRows))
	s.FPPer100k = ratio(1e5*float64(s.FPEvents), float64(s.Scored))
	s.RowPrecision = ratio(float64(rowTP), float64(rowTP+rowFP))
	s.RowRecall = ratio(float64(rowTP), float64(rowTP+rowFN))
	s.RowF1 = ratio(2*s.RowPrecision*s.RowRecall, s.RowPrecision+s.RowRecall)
	s.RowFAR = ratio(float64(rowFP), float64(s.Scored-rowTP-rowFN))
	s.MeanDelay = ratio(float64(delays), float64(s.Detected))
	s.RowsPerSecond = ratio(float64(s.Rows), s.Elapsed.Seconds())
	for _, k := range simulate.Kinds() {
		if ks := kinds[k]; ks != nil {
			ks.Recall = ratio(float64(ks.Detected), float64(ks.Windows))
			s.Kinds = append(s.Kinds, *ks)
		}
	}
	for _, p := range opts.profiles() {
		if n := nab[p.Name]; n != nil {
			n.Score = 100 * ratio(n.Raw-n.Null, n.Perfect-n.Null)
			s.NAB = append(s.NAB, *n)
		}
	}
	return Report{Options: opts, Summary: s, Files: slices.Clone(files)}
}

// WriteTable prints the report for people: the summary, recall per fault
// kind and, when verbose, one line per file.
func WriteTable(w io.Writer, r Report, verbose bool) error {
	s := r.Summary
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "files\t%d\t(%d rows, %d scored, %d clean)\n", s.Files, s.Rows, s.Scored, s.CleanRows)
	fmt.Fprintf(tw, "windows\t%d\tdetected %d\n", s.Windows, s.Detected)
	fmt.Fprintf(tw, "events\t%d\ttrue %d, false %d\n", s.Events, s.TPEvents, s.FPEvents)
	fmt.Fprintf(tw, "precision\t%.3f\t\n", s.Precision)
	fmt.Fprintf(tw, "recall\t%.3f\t\n", s.Recall)
	fmt.Fprintf(tw, "F1\t%.3f\t\n", s.F1)
	fmt.Fprintf(tw, "FP/100k clean\t%.1f\t(%d events)\n", s.CleanFPPer100k, s.CleanFPEvents)
	fmt.Fprintf(tw, "FP/100k all\t%.1f\t\n", s.FPPer100k)
	fmt.Fprintf(tw, "rows P/R/F1\t%.3f / %.3f / %.3f\t(row level; false alarm rate %.3f)\n", s.RowPrecision, s.RowRecall, s.RowF1, s.RowFAR)
	fmt.Fprintf(tw, "mean delay\t%.1f rows\t\n", s.MeanDelay)
	for _, n := range s.NAB {
		fmt.Fprintf(tw, "NAB %s\t%.1f\t(raw %.2f, null %.2f, perfect %.2f)\n", n.Profile, n.Score, n.Raw, n.Null, n.Perfect)
	}
	fmt.Fprintf(tw, "throughput\t%.0f rows/s\t\n", s.RowsPerSecond)
	fmt.Fprintln(tw, "\nkind\twindows\tdetected\trecall")
	for _, k := range s.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\n", k.Kind, k.Windows, k.Detected, k.Recall)
	}
	if verbose {
		fmt.Fprintln(tw, "\nfile\trows\twindows\tdetected\tevents\tfp\tflagged\tNAB raw\tdelays")
		for _, f := range r.Files {
			raw := 0.0
			if len(f.NAB) > 0 {
				raw = f.NAB[0].Score
			}
			var delays []string
			for _, w := range f.Windows {
				if w.Detected {
					delays = append(delays, fmt.Sprintf("%s:%d", w.Kind, w.Delay))
				} else {
					delays = append(delays, fmt.Sprintf("%s:miss", w.Kind))
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%v\n", f.File, f.Rows, len(f.Windows), f.Detected(), f.Events, f.FPEvents, f.Flagged, raw, delays)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write eval table: %w", err)
	}
	return nil
}
