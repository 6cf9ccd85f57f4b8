// Package app is Vigil's composition root: it chooses each store's backend by
// the scheme of its URL (an explicit switch, the only place that imports
// backends), applies the resilience decorators, wires the HTTP API and runs
// every long-running part in one run group.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Options are the process-wide things the caller builds: logger, metrics
// registry, clock and version.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Now      func() time.Time
	Version  string
	// AppDBOnly opens only the application database: for commands such as
	// `vigil token` that run beside a serving process (the embedded
	// time-series store admits one process at a time).
	AppDBOnly bool
}

// App holds the opened stores of one Vigil process.
type App struct {
	cfg  config.Config
	opts Options

	// TS is the time-series store, behind the resilience policy.
	TS timeseries.Repository
	// DB is the application database.
	DB appdb.Store
	// Objects is the artifact store.
	Objects *objects.Store
	// Cache and Locker are the cache store (loaded models, locks).
	Cache  cache.Cache
	Locker cache.Locker
	// Bus carries telemetry and anomaly events between components.
	Bus Bus

	verifyOnce sync.Once
	verify     *auth.Verifier

	// notifyBroker hands anomaly notifications to the embedded MQTT broker
	// once addMQTT built it; set by notifyPublisher (see there).
	notifyBroker *brokerPublisher

	// registry is the model registry shared by the process (see
	// SharedModels), built on first use.
	registryOnce sync.Once
	registry     *models.Registry
	registryErr  error

	policy *resilience.Policy
	health *resilience.Health
	// closers close the stores in reverse order of opening.
	closers []func() error
}

// Open opens every store cfg names. On error, whatever was opened is
// closed again.
func Open(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	a := &App{cfg: cfg, opts: opts}
	var err error
	a.policy, err = resilience.NewPolicy(resilience.Config{}, opts.Registry)
	if err != nil {
		return nil, err
	}
	a.health = resilience.NewHealth(resilience.HealthOptions{Now: opts.Now, Breakers: a.policy})
	if err := a.openStores(ctx); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// Config returns the configuration the app was opened with.
func (a *App) Config() config.Config { return a.cfg }

// Health runs every store's health check.
func (a *App) Health(ctx context.Context) resilience.Report { return a.health.Check(ctx) }

// Close closes every store, newest first. It is idempotent.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Bus is what the app needs of the message bus.
type Bus interface {
	bus.Publisher
	bus.Subscriber
	Close() error
}

func (a *App) onClose(f func() error) { a.closers = append(a.closers, f) }
