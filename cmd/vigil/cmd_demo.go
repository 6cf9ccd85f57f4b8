package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		ff      fleetFlags
		history time.Duration
		fs      *flag.FlagSet
	)
	cfg, err := loadConfig("demo", args, stderr, func(f *flag.FlagSet) {
		fs = f
		if dd := f.Lookup("data-dir"); dd != nil {
			dd.DefValue = "vigil-demo-data"
		}
		ff.register(f, 5, 4, 6)
		f.DurationVar(&history, "history", 24*time.Hour, "length of the history loaded at start")
		f.Usage = func() {
			fmt.Fprintln(stderr, `usage: vigil demo [flags]

Runs Vigil on its embedded defaults (data in ./vigil-demo-data) and a
simulated fleet feeding it: a day of history with a few labelled faults,
then live readings. Prints the URL, an admin token and example commands.
Ctrl-C stops it.

flags:`)
			f.PrintDefaults()
		}
	})
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["data-dir"] && os.Getenv(config.EnvName("data-dir")) == "" {
		cfg.DataDir = "vigil-demo-data"
	}
	if !set["out-of-order-window"] && os.Getenv(config.EnvName("out-of-order-window")) == "" && cfg.OutOfOrderWindow.Std() < history+time.Hour {
		cfg.OutOfOrderWindow = config.Duration(history + time.Hour)
	}
	sc, err := ff.scenario()
	if err != nil {
		return err
	}
	sc.Start = time.Now().Add(-history).Truncate(sc.Interval)

	log := newLogger(stderr, cfg.LogLevel)
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Registry: prometheus.NewRegistry(), Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Bootstrap(ctx, os.Getenv("VIGIL_BOOTSTRAP_TOKEN"), io.Discard); err != nil {
		return err
	}
	token, err := a.AdminToken(ctx, "demo admin")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another Vigil or InfluxDB running? choose another with --http-addr)", cfg.HTTPAddr, err)
	}
	log.Info("vigil demo started", "version", version, "data_dir", cfg.DataDir, "http", ln.Addr().String())
	if err := a.RunDemo(ctx, ln, app.DemoOptions{Scenario: sc, Token: token, Out: stdout}); err != nil {
		return err
	}
	log.Info("vigil demo stopped")
	return a.Close()
}
