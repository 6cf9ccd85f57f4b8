package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// openModels opens the stores of cfg and a model registry over them. With
// history, the time-series store is opened too (one process at a time for
// the embedded one); without, only the application database and the object
// store, which a serving process shares.
func openModels(ctx context.Context, cfg config.Config, stderr io.Writer, history bool) (*app.App, *models.Registry, error) {
	a, err := app.Open(ctx, cfg, app.Options{AppDBOnly: true, Logger: newLogger(stderr, "warn"), Version: version})
	if err != nil {
		return nil, nil, err
	}
	if err := a.OpenObjects(ctx); err != nil {
		return nil, nil, errors.Join(err, a.Close())
	}
	if history {
		if err := a.OpenTimeSeries(ctx); err != nil {
			if app.StoreLocked(err) {
				err = fmt.Errorf("%w\nthe time-series store of %s is in use by another process: stop vigil serve first, or use the API", err, cfg.DataDir)
			}
			return nil, nil, errors.Join(err, a.Close())
		}
	}
	reg, err := a.Models(models.Options{})
	if err != nil {
		return nil, nil, errors.Join(err, a.Close())
	}
	return a, reg, nil
}

// parseTimeFlag reads a time flag: RFC 3339, a date (2026-01-05), Unix
// milliseconds, or a negative duration relative to now (-720h).
func parseTimeFlag(flagName, s string, now time.Time) (int64, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("--%s %q: want RFC 3339 (2026-01-05T00:00:00Z), a date (2026-01-05), Unix ms, or a duration relative to now (-720h)", flagName, s)
}

// timeRange reads --start and --end; empty start is the epoch, empty end
// is now.
func timeRange(start, end string, now time.Time) (timeseries.Range, error) {
	r := timeseries.Range{Start: 0, End: now.UnixMilli() + 1}
	var err error
	if start != "" {
		if r.Start, err = parseTimeFlag("start", start, now); err != nil {
			return r, err
		}
	}
	if end != "" {
		if r.End, err = parseTimeFlag("end", end, now); err != nil {
			return r, err
		}
	}
	if r.Start >= r.End {
		return r, fmt.Errorf("--start %s is not before --end %s", fmtMillis(r.Start), fmtMillis(r.End))
	}
	return r, nil
}

func fmtMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func cmdModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = `usage: vigil models list [--name NAME] | promote --name NAME --version V | rollback --name NAME | prune --name NAME [--keep N]  [store flags]
Model names are series:<series key> or device:<device id> (see vigil models list).
These commands share the data directory with a running vigil serve; a serving
process sees promotions within 30 s.`
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	var (
		name string
		ver  int
		keep int
		all  bool
	)
	cfg, err := loadConfig("models "+sub, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "model name (series:<key> or device:<id>)")
		switch sub {
		case "promote":
			fs.IntVar(&ver, "version", 0, "version to activate (required)")
		case "prune":
			fs.IntVar(&keep, "keep", 5, "newest versions to keep (the active version is always kept too)")
		case "list":
			fs.BoolVar(&all, "all", false, "without --name: list every model, not only those with an active version")
		}
	})
	if err != nil {
		return err
	}
	switch sub {
	case "list", "promote", "rollback", "prune":
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	if sub != "list" && name == "" {
		return fmt.Errorf("--name is required (see vigil models list)")
	}
	a, reg, err := openModels(ctx, cfg, stderr, false)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "list":
		names := []string{name}
		if name == "" {
			if names, err = reg.Names(ctx, all); err != nil {
				return err
			}
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tSTAGE\tREADINGS\tSERIES\tTRAINED ON\tCREATED\tCHECKSUM")
		for _, n := range names {
			vs, err := reg.List(ctx, n)
			if err != nil {
				return err
			}
			if name != "" && len(vs) == 0 {
				return fmt.Errorf("no model named %q", n)
			}
			for _, m := range vs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s..%s\t%s\t%s\n", m.Name, m.Version, m.Stage, m.Training.Readings,
					m.Training.Series, fmtMillis(m.Training.First), fmtMillis(m.Training.Last), when(m.CreatedAt), shortSum(m.Checksum))
			}
		}
		return tw.Flush()
	case "promote":
		if ver <= 0 {
			return errors.New("--version is required (see vigil models list --name NAME)")
		}
		m, err := reg.Promote(ctx, name, ver)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %d is active\n", m.Name, m.Version)
	case "rollback":
		m, err := reg.Rollback(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s rolled back: version %d is active\n", m.Name, m.Version)
	case "prune":
		deleted, err := reg.Prune(ctx, name, keep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted %d versions %v\n", name, len(deleted), deleted)
	}
	return a.Close()
}

func shortSum(s string) string {
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

// progressPrinter prints training or backtest progress to w at most once
// per second.
func progressPrinter(w io.Writer, what string) func(models.Progress) {
	var last time.Time
	return func(p models.Progress) {
		if time.Since(last) < time.Second && p.Done < p.Total {
			return
		}
		last = time.Now()
		pct := 100.0
		if p.Total > 0 {
			pct = min(100, 100*float64(p.Done)/float64(p.Total))
		}
		fmt.Fprintf(w, "%s %s: %d/%d readings (%.0f%%), through %s\n", what, p.Scope, p.Done, p.Total, pct, fmtMillis(p.Through))
	}
}
