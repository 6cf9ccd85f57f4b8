package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/oklog/run"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/notify"
	"github.com/vigil-iot/vigil/internal/resilience"
)

// detectionOn reports whether the configuration turns detection on.
func (a *App) detectionOn() bool { return a.cfg.Detection != "off" }

// ingestWriter is what ingest writes through: the time-series store, and
// with detection on, a publication of every durable write to the bus topic
// "telemetry" keyed by device, for the detection engine.
func (a *App) ingestWriter() ingest.Writer {
	if !a.detectionOn() || a.Bus == nil {
		return a.TS
	}
	return &engine.PublishingWriter{W: a.TS, Pub: a.Bus}
}

// Engine builds the detection engine over the app's stores and bus, with
// the shared model registry (SharedModels): series and devices without a
// checkpoint start from their active model.
func (a *App) Engine() (*engine.Engine, error) {
	reg, err := a.SharedModels()
	if err != nil {
		return nil, fmt.Errorf("detection engine: %w", err)
	}
	return engine.New(a.TS, a.DB, a.Bus, engine.Options{
		Config:     engine.DefaultConfig(),
		Logger:     a.opts.Logger.With("component", "detect"),
		Now:        a.opts.Now,
		Registerer: a.opts.Registry,
		Middleware: []bus.Middleware{resilience.Recover()},
		Models:     reg,
	})
}

// SharedModels returns the process's one model registry, built on the
// first call over the app's stores and its cache store (a.Cache; a new
// in-process cache when the app has none open). The live engine reads
// models through it; use it rather than Models wherever default options
// do, so that a promotion here invalidates the engine's cached answer.
func (a *App) SharedModels() (*models.Registry, error) {
	a.registryOnce.Do(func() {
		if a.DB == nil || a.Objects == nil {
			a.registryErr = errors.New("model registry: application database and object store must be open")
			return
		}
		c := a.Cache
		if c == nil {
			if c, a.registryErr = a.modelCache(); a.registryErr != nil {
				return
			}
		}
		var ts models.History
		if a.TS != nil {
			ts = a.TS
		}
		a.registry, a.registryErr = models.New(ts, a.DB.Models(), a.Objects, c, models.Options{
			Now:    a.opts.Now,
			Logger: a.opts.Logger.With("component", "models"),
			Code:   a.opts.Version,
		})
	})
	return a.registry, a.registryErr
}

// Relay builds the outbox relay: anomaly notifications to the configured
// webhook (none when WebhookURL is empty) and, when pub is not nil, to the
// MQTT topic MQTTNotifyTopic through pub (see notifyPublisher).
func (a *App) Relay(pub notify.MQTTPublisher) (*notify.Relay, error) {
	opts := notify.Options{
		WebhookTopic: engine.TopicAnomalies,
		Logger:       a.opts.Logger.With("component", "notify"),
		Now:          a.opts.Now,
		Registerer:   a.opts.Registry,
	}
	if a.cfg.WebhookURL != "" {
		opts.Webhook = &notify.Webhook{URL: a.cfg.WebhookURL, Secret: []byte(a.cfg.WebhookKey)}
	}
	if pub != nil {
		opts.MQTT = &notify.MQTT{Publisher: pub, Topic: a.cfg.MQTTNotifyTopic}
	}
	// The in-process bus keeps messages of a topic nobody consumes until it
	// is full and then blocks, so the relay publishes to the bus only when
	// a consumer of "anomalies" exists; none does yet.
	return notify.NewRelay(a.DB.Outbox(), opts)
}

// addDetection adds the detection engine (when on), the outbox relay and
// its MQTT publisher (when configured) to g. It declares the engine's consumer group first, so that no write
// accepted from now on is missed.
func (a *App) addDetection(ctx context.Context, g *run.Group) error {
	pub, err := a.notifyPublisher(ctx, g)
	if err != nil {
		return err
	}
	relay, err := a.Relay(pub)
	if err != nil {
		return err
	}
	{
		rctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return relay.Run(rctx) }, func(error) { cancel() })
	}
	if !a.detectionOn() {
		return nil
	}
	if in, ok := a.Bus.(bus.Initializer); ok {
		if err := in.Initialize(ctx, engine.TopicTelemetry, engine.GroupDetect); err != nil {
			return fmt.Errorf("declare detection consumer group: %w", err)
		}
	}
	en, err := a.Engine()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	g.Add(func() error { return en.Run(rctx) }, func(error) { cancel() })
	return nil
}
