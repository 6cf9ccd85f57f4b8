package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/oklog/run"

	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/httpapi"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

var (
	// timeseriesProbe selects nothing; listing it exercises the store.
	timeseriesProbe = timeseries.Selector{Measurement: "__vigil_health_probe__"}
	probeRange      = timeseries.Range{Start: 0, End: 1}
)

// shutdownGrace bounds how long in-flight requests may drain on shutdown.
const shutdownGrace = 30 * time.Second

// Ingester builds the write pipeline shared by HTTP and MQTT, seeded with
// the existing series so that cardinality limits hold across restarts.
func (a *App) Ingester(ctx context.Context) (*ingest.Ingester, error) {
	in := ingest.New(a.ingestWriter(), ingest.Options{
		Limits: ingest.DefaultLimits(),
		Now:    a.opts.Now,
		Logger: a.opts.Logger.With("component", "ingest"),
	})
	now := telemetry.Millis(a.opts.Now())
	if err := in.Seed(ctx, a.TS, timeseries.Range{Start: 0, End: now + a.cfg.MaxFutureSkew.Std().Milliseconds() + 1}); err != nil {
		return nil, err
	}
	return in, nil
}

// verifier returns the token verifier shared by HTTP and MQTT, so that a
// revoke through the API reaches both at once. Lookups go through a short
// TTL cache; last-used times are recorded at most once a minute per token.
func (a *App) verifier() *auth.Verifier {
	a.verifyOnce.Do(func() {
		tokens := a.DB.Tokens()
		a.verify = auth.NewVerifier(auth.NewCache(auth.AppDBTokens{Repo: tokens},
			auth.CacheOptions{Now: a.opts.Now, Touch: tokens.Touch}), a.opts.Now)
	})
	return a.verify
}

// Handler builds the HTTP API over the app's stores.
func (a *App) Handler(in *ingest.Ingester) http.Handler {
	return httpapi.New(httpapi.Deps{
		Series:   a.TS,
		Ingester: in,
		Verifier: a.verifier(),
		DB:       a.DB,
		Ready: func(ctx context.Context) []httpapi.Check {
			rep := a.health.Check(ctx)
			checks := make([]httpapi.Check, len(rep.Checks))
			for i, c := range rep.Checks {
				checks[i] = httpapi.Check{Name: c.Name}
				if c.Error != "" {
					checks[i].Err = errors.New(c.Error)
				}
			}
			return checks
		},
		Logger:  a.opts.Logger.With("component", "http"),
		Now:     a.opts.Now,
		Version: a.opts.Version,
	})
}

// Run serves the HTTP API on ln and runs the background jobs (retention)
// until ctx is cancelled; then it stops accepting requests, drains the
// in-flight ones (so every acknowledged write is durable) and returns.
// The caller closes the app afterwards.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	in, err := a.Ingester(ctx)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(in), ReadHeaderTimeout: 10 * time.Second}
	var g run.Group
	if err := a.addDetection(ctx, &g); err != nil {
		return err
	}
	if err := a.addMQTT(ctx, &g, in); err != nil {
		return err
	}
	{
		g.Add(func() error {
			a.opts.Logger.Info("http api listening", "addr", ln.Addr().String())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http server: %w", err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				a.opts.Logger.Warn("http shutdown incomplete", "err", err)
			}
		})
	}
	{
		rctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return a.runRetention(rctx) }, func(error) { cancel() })
	}
	{
		tctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return a.runTraining(tctx) }, func(error) { cancel() })
	}
	{
		rctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { <-rctx.Done(); return nil }, func(error) { cancel() })
	}
	return g.Run()
}

// retentionInterval is how often the retention policy runs.
const retentionInterval = time.Hour

// runRetention deletes samples older than the retention every hour, and
// once at start.
func (a *App) runRetention(ctx context.Context) error {
	if a.cfg.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(retentionInterval)
	defer t.Stop()
	for {
		if err := a.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
			a.opts.Logger.Error("retention failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ApplyRetention deletes every sample older than now − retention.
func (a *App) ApplyRetention(ctx context.Context) error {
	if a.cfg.Retention <= 0 {
		return nil
	}
	cutoff := a.opts.Now().Add(-a.cfg.Retention.Std())
	if err := a.TS.DeleteBefore(ctx, telemetry.Millis(cutoff)); err != nil {
		return fmt.Errorf("apply retention before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	a.opts.Logger.Info("retention applied", "cutoff", cutoff.Format(time.RFC3339))
	return nil
}
