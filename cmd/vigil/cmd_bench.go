package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/loadgen"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprintln(stderr, "usage: vigil bench ingest [flags]   (run 'vigil bench ingest -h' for the flags)")
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("unknown bench %q: want ingest", args[0])
	}
	fs := flag.NewFlagSet("vigil bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        loadgen.Config
		token      = fs.String("token", "", "write token (env: VIGIL_TOKEN); not needed with --serve")
		tokenFile  = fs.String("token-file", "", "read the token from this file")
		serve      = fs.Bool("serve", false, "start an in-process Vigil on a temporary data directory and load it (end-to-end on this machine)")
		dataDir    = fs.String("data-dir", "", "with --serve: data directory to use instead of a temporary one")
		detection  = fs.String("detection", "on", "with --serve: run anomaly detection on the ingested points (on or off), as vigil serve does")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the run (with --serve it covers the server too)")
	)
	fs.StringVar(&cfg.URL, "url", "http://localhost:8086", "Vigil's HTTP address (ignored with --serve)")
	fs.IntVar(&cfg.Batch, "batch", 5000, "lines per request")
	fs.IntVar(&cfg.Fields, "fields", 10, "float fields per line (points per line)")
	fs.IntVar(&cfg.Series, "series", 1000, "distinct tag sets (devices); series = this × --fields")
	fs.IntVar(&cfg.Connections, "connections", 2, "concurrent connections")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send (unless --batches)")
	fs.IntVar(&cfg.Batches, "batches", 0, "send this many requests in total, then stop")
	fs.DurationVar(&cfg.Step, "step", 100*time.Millisecond, "time between two points of one series")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: vigil bench ingest [flags]

Measures HTTP ingest: posts pre-generated line protocol to /api/v2/write over
--connections connections and reports points/s, lines/s, bytes/s and request
latency percentiles. A 204 from Vigil means durable, so with --serve this is
end-to-end ingest throughput on this machine (generator included).

  vigil bench ingest --serve --connections 2 --batch 5000 --fields 10 --duration 20s
  vigil bench ingest --url http://vigil:8086 --token-file admin-token --duration 1m

flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Org, cfg.Bucket = "bench", "bench"

	if *serve {
		url, secret, stop, err := startBenchServer(ctx, *dataDir, *detection, stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintf(stderr, "stopping the in-process server: %v\n", err)
			}
		}()
		cfg.URL, cfg.Token = url, secret
	} else {
		secret, err := readToken(*token, *tokenFile)
		if err != nil {
			return err
		}
		cfg.Token = secret
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	span := fmt.Sprintf("for %s", cfg.Duration)
	if cfg.Batches > 0 {
		span = fmt.Sprintf("%d batches", cfg.Batches)
	}
	fmt.Fprintf(stderr, "sending %s of %d lines × %d fields (%d series) over %d connections to %s (GOMAXPROCS %d)\n",
		span, cfg.Batch, cfg.Fields, cfg.Series*cfg.Fields, cfg.Connections, cfg.URL, runtime.GOMAXPROCS(0))
	res, err := loadgen.Run(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		if errors.Is(err, loadgen.ErrRefused) && !*serve {
			return fmt.Errorf("%w\n  → check --url and --token / --token-file (the token needs the write role)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, `requests   %d ok, %d errors in %s
points/s   %.0f
lines/s    %.0f
bytes/s    %.1f MB/s
latency    p50 %s  p90 %s  p99 %s  max %s
`, res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond), res.PointsPerSec(), res.LinesPerSec(),
		res.BytesPerSec()/1e6, res.P50.Round(time.Microsecond*100), res.P90.Round(time.Microsecond*100),
		res.P99.Round(time.Microsecond*100), res.Max.Round(time.Microsecond*100))
	if res.FirstError != "" {
		fmt.Fprintf(stdout, "first error: %s\n", res.FirstError)
	}
	return nil
}

// startBenchServer opens Vigil on embedded defaults in dir (a new temporary
// directory when empty), with detection on or off, and serves it on a
// loopback port.
func startBenchServer(ctx context.Context, dir, detection string, stderr io.Writer) (url, token string, stop func() error, err error) {
	cleanup := func() error { return nil }
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vigil-bench-"); err != nil {
			return "", "", nil, fmt.Errorf("create temporary data directory: %w", err)
		}
		cleanup = func() error { return os.RemoveAll(dir) }
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.LogLevel = "warn"
	cfg.Detection = detection
	a, err := app.Open(ctx, cfg, app.Options{Logger: newLogger(stderr, "warn"), Registry: prometheus.NewRegistry(), Version: version})
	if err != nil {
		return "", "", nil, errors.Join(err, cleanup())
	}
	fail := func(err error) (string, string, func() error, error) {
		return "", "", nil, errors.Join(err, a.Close(), cleanup())
	}
	if err := a.Bootstrap(ctx, "", io.Discard); err != nil {
		return fail(err)
	}
	if token, err = a.AdminToken(ctx, "bench"); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(fmt.Errorf("listen on loopback: %w", err))
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := a.RunBackground(sctx, ln)
	fmt.Fprintf(stderr, "in-process Vigil on %s, data in %s\n", ln.Addr(), dir)
	return "http://" + ln.Addr().String(), token, func() error {
		cancel()
		return errors.Join(wait(), a.Close(), cleanup())
	}, nil
}
