package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigil-iot/vigil/internal/benchdata"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// corpusFlags are the flags shaping a generated corpus, shared by corpus
// and eval.
type corpusFlags struct {
	seed             uint64
	minRows, maxRows int
	repeats          int
	clean            int
	devices          int
}

func (c *corpusFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&c.seed, "seed", 1, "corpus seed: the same seed gives the same corpus")
	fs.IntVar(&c.minRows, "min-rows", 5000, "minimum rows per file")
	fs.IntVar(&c.maxRows, "max-rows", 30000, "maximum rows per file (seasonal-break files span at least 5 days)")
	fs.IntVar(&c.repeats, "repeats", 1, "univariate files per fault kind and sampling interval")
	fs.IntVar(&c.clean, "clean", 2, "fault-free files per sampling interval")
	fs.IntVar(&c.devices, "devices", 6, "multivariate device files (3 to 8 sensors)")
}

func (c *corpusFlags) options() simulate.CorpusOptions {
	return simulate.CorpusOptions{Seed: c.seed, MinRows: c.minRows, MaxRows: c.maxRows, Repeats: c.repeats, Clean: c.clean, DeviceFiles: c.devices}
}

func cmdCorpus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "import-nab":
			return cmdCorpusImport(ctx, "nab", args[1:], stdout, stderr)
		case "import-skab":
			return cmdCorpusImport(ctx, "skab", args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("corpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the corpus to (required)")
	var cf corpusFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vigil corpus --out DIR [flags]\n       vigil corpus import-nab|import-skab --help\n\nWrites a labelled anomaly corpus: CSV files in the input format of 'vigil detect' and\n"+simulate.LabelsFile+" with the anomaly windows of each file.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--out DIR is required and no arguments are accepted")
	}
	rows := 0
	l, err := simulate.WriteCorpus(ctx, *out, cf.options(), func(file string, n int) {
		rows += n
		fmt.Fprintf(stderr, "wrote %s (%d rows)\n", file, n)
	})
	if err != nil {
		return err
	}
	windows := 0
	for _, f := range l.Files {
		windows += len(f.Windows)
	}
	_, err = fmt.Fprintf(stdout, "corpus: %d files, %d rows, %d labelled windows in %s\n", len(l.Files), rows, windows, *out)
	return err
}

// cmdCorpusImport converts a public benchmark ("nab" or "skab") into a
// labelled corpus.
func cmdCorpusImport(ctx context.Context, bench string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("corpus import-"+bench, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "benchmark data directory, searched recursively for CSV files (required)")
	out := fs.String("out", "", "directory to write the corpus to (required)")
	var labels *string
	usage := "usage: vigil corpus import-skab --data SKAB/data --out DIR\n\nConverts the Skoltech Anomaly Benchmark into a labelled corpus for 'vigil eval --corpus DIR':\nruns of rows with anomaly = 1 become correlation_break windows over all sensors.\n\nflags:"
	if bench == "nab" {
		labels = fs.String("labels", "", "NAB's labels/combined_windows.json (required)")
		usage = "usage: vigil corpus import-nab --data NAB/data --labels NAB/labels/combined_windows.json --out DIR\n\nConverts the Numenta Anomaly Benchmark into a labelled corpus for 'vigil eval --corpus DIR':\nits label windows become level_shift windows (NAB does not say what an anomaly is).\n\nflags:"
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *out == "" || (labels != nil && *labels == "") || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--data, --out (and for import-nab --labels) are required and no arguments are accepted")
	}
	opts := benchdata.Options{Progress: func(i, n int, f simulate.FileLabels, dropped int) {
		fmt.Fprintf(stderr, "[%d/%d] wrote %s (%d rows, %d windows", i, n, f.File, f.Rows, len(f.Windows))
		if dropped > 0 {
			fmt.Fprintf(stderr, ", %d rows dropped: timestamp earlier than the previous row's", dropped)
		}
		fmt.Fprintln(stderr, ")")
	}}
	var sum benchdata.Summary
	var err error
	if bench == "nab" {
		_, sum, err = benchdata.ImportNAB(ctx, *data, *labels, *out, opts)
	} else {
		_, sum, err = benchdata.ImportSKAB(ctx, *data, *out, opts)
	}
	for _, w := range sum.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "corpus import-%s: %d files, %d rows, %d labelled windows, %d rows dropped (out of time order), %d warnings in %s\n",
		bench, sum.Files, sum.Rows, sum.Windows, sum.Dropped, len(sum.Warnings), *out)
	return err
}
