package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

func cmdTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		series, device, measurement string
		start, end                  string
		promote, quiet              bool
	)
	cfg, err := loadConfig("train", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&series, "series", "", "train the model of one series, by key (measurement,tag=v field)")
		fs.StringVar(&device, "device", "", "train the model of a device: all its series and the multivariate detector")
		fs.StringVar(&measurement, "measurement", "", "train one series model for every series of the measurement")
		fs.StringVar(&start, "start", "", "history start: RFC 3339, date, Unix ms or -duration (default: all history)")
		fs.StringVar(&end, "end", "", "history end, exclusive (default: now)")
		fs.BoolVar(&promote, "promote", false, "activate the new version(s) at once")
		fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	})
	if err != nil {
		return err
	}
	set := 0
	for _, s := range []string{series, device, measurement} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return errors.New("give exactly one of --series KEY, --device ID or --measurement NAME")
	}
	rng, err := timeRange(start, end, time.Now())
	if err != nil {
		return err
	}
	a, reg, err := openModels(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer a.Close()
	opts := models.TrainOptions{}
	if !quiet {
		opts.Progress = progressPrinter(stderr, "training")
	}
	var trained []models.Meta
	switch {
	case measurement != "":
		trained, err = reg.TrainEach(ctx, timeseries.Selector{Measurement: measurement}, rng, opts)
	default:
		scope := models.SeriesScope(series)
		if device != "" {
			scope = models.DeviceScope(device)
		}
		var m models.Meta
		if m, err = reg.TrainWith(ctx, scope, rng, opts); err == nil {
			trained = append(trained, m)
		}
	}
	for _, m := range trained {
		tr := m.Training
		fmt.Fprintf(stdout, "%s version %d (%s): %d readings of %d series (%d warm) from %s to %s, %d bytes, %s, trained in %v\n",
			m.Name, m.Version, m.Stage, tr.Readings, tr.Series, tr.Warm, fmtMillis(tr.First), fmtMillis(tr.Last), tr.Size, m.Checksum, tr.Duration.Round(time.Millisecond))
	}
	if err != nil {
		if errors.Is(err, models.ErrNoData) {
			return fmt.Errorf("%w (check the key with the query API, or widen --start/--end)", err)
		}
		return err
	}
	if promote {
		for _, m := range trained {
			p, err := reg.Promote(ctx, m.Name, m.Version)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s version %d is active\n", p.Name, p.Version)
		}
	}
	return a.Close()
}
