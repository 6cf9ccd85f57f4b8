package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
)

// loadConfig parses the store and server flags shared by the commands that
// open stores.
func loadConfig(name string, args []string, stderr io.Writer, extra func(fs *flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := config.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected arguments %q (flags go before nothing else)", fs.Args())
	}
	return f.Load(os.Getenv)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Registry: prometheus.NewRegistry(), Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Bootstrap(ctx, os.Getenv("VIGIL_BOOTSTRAP_TOKEN"), stdout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another Vigil or InfluxDB running? choose another with --http-addr)", cfg.HTTPAddr, err)
	}
	log.Info("vigil started", "version", version, "data_dir", cfg.DataDir, "http", ln.Addr().String())
	if err := a.Run(ctx, ln); err != nil {
		return err
	}
	log.Info("vigil stopped")
	return a.Close()
}
