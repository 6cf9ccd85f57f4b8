package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/eval"
	"github.com/vigil-iot/vigil/internal/simulate"
)

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("corpus", "", "corpus directory (from 'vigil corpus'); default: generate one in a temporary directory")
	var cf corpusFlags
	cf.register(fs)
	opts := eval.DefaultOptions()
	fs.IntVar(&opts.Tolerance, "tolerance", opts.Tolerance, "rows after a window's end in which a flag still detects it")
	fs.IntVar(&opts.MergeGap, "merge-gap", opts.MergeGap, "flagged runs at most this many rows apart form one predicted event")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	verbose := fs.Bool("verbose", false, "also print one line per file")
	only := fs.String("only", "", "score only the files whose names match this glob, e.g. 'device_*'")
	config := fs.String("config", "", "JSON file overriding detector defaults, as for 'vigil detect --config'")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vigil eval [--corpus DIR] [flags]\n\nScores every file of a labelled corpus with the detectors of 'vigil detect' and reports\nevent-level precision, recall and F1, false positives on clean files, recall per fault kind\nand NAB-style scores. The corpus-shaping flags apply only when --corpus is omitted.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errors.New("no arguments are accepted")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "vigil-corpus-")
		if err != nil {
			return fmt.Errorf("create corpus directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		fmt.Fprintf(stderr, "generating corpus (seed %d) in %s\n", cf.seed, tmp)
		if _, err := simulate.WriteCorpus(ctx, tmp, cf.options(), nil); err != nil {
			return err
		}
		*dir = tmp
	}
	dopts := detect.DefaultCSVOptions()
	if *config != "" {
		if err := loadDetectConfig(*config, &dopts); err != nil {
			return err
		}
	}
	labels, err := eval.LoadLabels(*dir)
	if err != nil {
		return err
	}
	if labels, err = eval.Filter(labels, *only); err != nil {
		return err
	}
	scorer := func(ctx context.Context, in io.Reader, out io.Writer) error {
		_, err := detect.ScoreCSV(ctx, in, out, dopts)
		return err
	}
	report, err := eval.Run(ctx, *dir, labels, scorer, opts, func(i, n int, r eval.FileResult) {
		fmt.Fprintf(stderr, "[%d/%d] %-32s %6d rows %7.2fs  windows %d/%d  false events %d\n",
			i, n, r.File, r.Rows, r.Elapsed.Seconds(), r.Detected(), len(r.Windows), r.FPEvents)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("write eval report: %w", err)
		}
		return nil
	}
	return eval.WriteTable(stdout, report, *verbose)
}
