package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vigil-iot/vigil/internal/models"
)

func cmdBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		name, start, end string
		ver, quietN      int
		compare, quiet   bool
	)
	cfg, err := loadConfig("backtest", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "model name, series:<key> or device:<id> (required)")
		fs.IntVar(&ver, "version", 0, "model version (default: the newest)")
		fs.StringVar(&start, "start", "", "replay start (default: the end of the model's training data)")
		fs.StringVar(&end, "end", "", "replay end, exclusive (default: now)")
		fs.IntVar(&quietN, "quiet-readings", models.DefaultQuiet, "non-anomalous readings that close an event")
		fs.BoolVar(&compare, "compare", true, "also replay the active version, when it is another one")
		fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	})
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("--name is required (see vigil models list)")
	}
	a, reg, err := openModels(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer a.Close()
	if ver == 0 {
		vs, err := reg.List(ctx, name)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return fmt.Errorf("no model named %q (see vigil models list)", name)
		}
		ver = vs[len(vs)-1].Version
	}
	m, err := reg.Load(ctx, name, ver)
	if err != nil {
		return err
	}
	if start == "" {
		start = fmt.Sprint(m.Training.Last + 1)
	}
	rng, err := timeRange(start, end, time.Now())
	if err != nil {
		return err
	}
	opts := models.BacktestOptions{Quiet: quietN}
	if !quiet {
		opts.Progress = progressPrinter(stderr, "replaying")
	}
	reports := []models.Report{}
	rep, err := reg.Backtest(ctx, m, rng, opts)
	if err != nil {
		return err
	}
	reports = append(reports, rep)
	if compare {
		act, err := reg.Active(ctx, name)
		switch {
		case errors.Is(err, models.ErrNotFound):
		case err != nil:
			return err
		case act.Version != m.Version:
			r2, err := reg.Backtest(ctx, act, rng, opts)
			if err != nil {
				return err
			}
			reports = append(reports, r2)
		}
	}
	fmt.Fprintf(stdout, "replay of %s..%s\n", fmtMillis(rng.Start), fmtMillis(rng.End))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tREADINGS\tDEVICE ROWS\tEVENTS\tPER 100K")
	for _, r := range reports {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.1f\n", r.Version, r.Readings, r.DeviceRows, len(r.Events), r.AnomaliesPer100k())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nevents of version %d:\n", rep.Version)
	tw = tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tSERIES\tPEAK\tSEVERITY\tREADINGS\tDETECTORS")
	for _, e := range rep.Events {
		endAt := fmtMillis(e.End)
		if e.Open {
			endAt += " (open)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%s\t%d\t%v\n", fmtMillis(e.Start), endAt, e.Series, e.Peak, e.Severity, e.Readings, e.Detectors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return a.Close()
}
