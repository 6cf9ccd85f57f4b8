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
		fmt.Fprintln(stderr, "usage: vigil eval [--corpus DIR] [flags]\n\nScores every file of a labelled corpus with the detectors of 'vigil detect' and reports\nevent-level precision, recall and F1 (alarms: the first row of a device alarm), row-level\nprecision, recall and F1 (the rows a device alarm holds, as 'vigil detect' flags them), false positives on clean files, recall per fault kind\nand NAB-style scores. The corpus-shaping flags apply only when --corpus is omitted.\n\nflags:")
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
	// Event level scores alarms, as the engine opens events: the first row
	// of a device alarm. Row level scores the rows a device alarm holds, as
	// 'vigil detect' flags them by default. A --config that sets
	// hold_device_alarms applies to both.
	dopts := detect.DefaultCSVOptions()
	if *config != "" {
		if err := loadDetectConfig(*config, &dopts); err != nil {
			return err
		}
	}
	eopts := dopts
	if held, err := setsHold(*config); err != nil {
		return err
	} else if !held {
		eopts.HoldDeviceAlarms = false
	}
	labels, err := eval.LoadLabels(*dir)
	if err != nil {
		return err
	}
	if labels, err = eval.Filter(labels, *only); err != nil {
		return err
	}
	scorer := func(o detect.CSVOptions) eval.Scorer {
		return func(ctx context.Context, in io.Reader, out io.Writer) error {
			_, err := detect.ScoreCSV(ctx, in, out, o)
			return err
		}
	}
	var rows eval.Scorer
	if eopts.HoldDeviceAlarms != dopts.HoldDeviceAlarms {
		rows = scorer(dopts)
	}
	report, err := eval.RunSplit(ctx, *dir, labels, scorer(eopts), rows, opts, func(i, n int, r eval.FileResult) {
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

// setsHold reports whether the detect config file at path (none when empty)
// sets hold_device_alarms.
func setsHold(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read detect config: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return false, fmt.Errorf("decode detect config %s: %w", path, err)
	}
	_, ok := m["hold_device_alarms"]
	return ok, nil
}
