package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/bus/membus"
	"github.com/vigil-iot/vigil/internal/cache/localcache"
	"github.com/vigil-iot/vigil/internal/cache/rediscache"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

// Names of the stores, as health checks and breakers report them.
const (
	storeTSDB    = "tsdb"
	storeAppDB   = "appdb"
	storeObjects = "objects"
	storeCache   = "cache"
	storeBus     = "bus"
)

func (a *App) openStores(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory %s: %w", a.cfg.DataDir, err)
	}
	opens := []func(context.Context) error{a.openTSDB, a.openAppDB, a.openObjects, a.openCache, a.openBus}
	if a.opts.AppDBOnly {
		opens = opens[1:2]
	}
	for _, open := range opens {
		if err := open(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) openTSDB(ctx context.Context) error {
	scheme, _ := config.Scheme(a.cfg.TSDB)
	switch scheme {
	case "embedded":
		dir := config.Path(a.cfg.TSDB, a.cfg.DataDir, "tsdb")
		st, err := embedts.Open(dir, embedts.Options{
			OutOfOrderWindow: a.cfg.OutOfOrderWindow.Std(),
			Retention:        a.cfg.Retention.Std(),
			MaxFutureSkew:    a.cfg.MaxFutureSkew.Std(),
			Logger:           a.opts.Logger.With("store", storeTSDB),
			Registerer:       a.opts.Registry,
			Now:              a.opts.Now,
		})
		if err != nil {
			return fmt.Errorf("open time-series store %s: %w", dir, err)
		}
		a.TS = resilience.TimeSeries(st, a.policy)
		a.onClose(st.Close)
		return a.health.Register(resilience.TimeSeriesName, func(ctx context.Context) error {
			_, err := st.ListSeries(ctx, timeseriesProbe, probeRange)
			return err
		})
	}
	return fmt.Errorf("tsdb: unsupported scheme %q", scheme)
}

func (a *App) openAppDB(ctx context.Context) error {
	scheme, _ := config.Scheme(a.cfg.AppDB)
	switch scheme {
	case "sqlite":
		path := config.Path(a.cfg.AppDB, a.cfg.DataDir, "vigil.db")
		st, err := sqlitedb.Open(ctx, path, sqlitedb.Options{
			Logger: a.opts.Logger.With("store", storeAppDB),
			Now:    a.opts.Now,
		})
		if err != nil {
			return fmt.Errorf("open application database %s: %w", path, err)
		}
		a.DB = st
		a.onClose(st.Close)
		return a.health.Register(storeAppDB, st.Ping)
	}
	return fmt.Errorf("appdb: unsupported scheme %q", scheme)
}

func (a *App) openObjects(ctx context.Context) error {
	scheme, _ := config.Scheme(a.cfg.Objects)
	var url string
	switch scheme {
	case "file":
		dir, err := filepath.Abs(config.Path(a.cfg.Objects, a.cfg.DataDir, "objects"))
		if err != nil {
			return fmt.Errorf("object store directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create object store directory %s: %w", dir, err)
		}
		url = "file://" + filepath.ToSlash(dir)
	case "mem":
		url = "mem://"
	default:
		return fmt.Errorf("objects: unsupported scheme %q", scheme)
	}
	st, err := objects.Open(ctx, url)
	if err != nil {
		return fmt.Errorf("open object store %s: %w", url, err)
	}
	a.Objects = st
	a.onClose(st.Close)
	return a.health.Register(storeObjects, st.Ping)
}

func (a *App) openCache(ctx context.Context) error {
	scheme, _ := config.Scheme(a.cfg.Cache)
	switch scheme {
	case "mem":
		c, err := localcache.New(localcache.Options{Now: a.opts.Now})
		if err != nil {
			return fmt.Errorf("open in-process cache: %w", err)
		}
		a.Cache, a.Locker = c, c
		a.onClose(c.Close)
		return a.health.Register(storeCache, func(ctx context.Context) error {
			if err := c.Set(ctx, "vigil/health/probe", []byte("ok"), time.Minute); err != nil {
				return err
			}
			_, err := c.Get(ctx, "vigil/health/probe")
			return err
		})
	case "redis", "rediss":
		c, err := rediscache.Open(ctx, a.cfg.Cache, rediscache.Options{Prefix: "vigil/", Logger: a.opts.Logger.With("store", storeCache)})
		if err != nil {
			return fmt.Errorf("open cache %s: %w", config.Redact(a.cfg.Cache), err)
		}
		a.Cache, a.Locker = c, c
		a.onClose(c.Close)
		return a.health.Register(storeCache, c.Ping)
	}
	return fmt.Errorf("cache: unsupported scheme %q", scheme)
}

func (a *App) openBus(context.Context) error {
	scheme, _ := config.Scheme(a.cfg.Bus)
	switch scheme {
	case "mem":
		b := membus.New(membus.Options{})
		a.Bus = b
		a.onClose(b.Close)
		return a.health.Register(storeBus, func(context.Context) error { return nil })
	}
	return fmt.Errorf("bus: unsupported scheme %q", scheme)
}
