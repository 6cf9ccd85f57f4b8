package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

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
	fs := flag.NewFlagSet("corpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the corpus to (required)")
	var cf corpusFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vigil corpus --out DIR [flags]\n\nWrites a labelled anomaly corpus: CSV files in the input format of 'vigil detect' and\n"+simulate.LabelsFile+" with the anomaly windows of each file.\n\nflags:")
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
