package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/cache/localcache"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

// modelCacheBytes bounds the in-process cache of a model registry.
const modelCacheBytes = 64 << 20

// Models returns a model registry over the app's stores and a new cache
// chosen by the cache URL (mem: an in-process cache, closed with the app).
// Zero fields of opts take the app's clock, logger and version. Build one
// registry per process and share it: each call makes its own cache.
//
// On an app opened with AppDBOnly, call OpenObjects first; the registry then
// has no time-series store (training and backtests fail with
// models.ErrUnavailable) but lists, promotes, rolls back and prunes.
func (a *App) Models(opts models.Options) (*models.Registry, error) {
	if a.DB == nil || a.Objects == nil {
		return nil, errors.New("model registry: application database and object store must be open")
	}
	c, err := a.modelCache()
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = a.opts.Now
	}
	if opts.Logger == nil {
		opts.Logger = a.opts.Logger.With("component", "models")
	}
	if opts.Code == "" {
		opts.Code = a.opts.Version
	}
	var ts models.History
	if a.TS != nil {
		ts = a.TS
	}
	return models.New(ts, a.DB.Models(), a.Objects, c, opts)
}

func (a *App) modelCache() (cache.Cache, error) {
	scheme, err := config.Scheme(a.cfg.Cache)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	switch scheme {
	case "mem":
		c, err := localcache.New(localcache.Options{MaxBytes: modelCacheBytes, Now: a.opts.Now})
		if err != nil {
			return nil, fmt.Errorf("open model cache: %w", err)
		}
		a.onClose(c.Close)
		return c, nil
	}
	return nil, fmt.Errorf("cache: unsupported scheme %q", scheme)
}

// OpenObjects opens the object store of an app opened with
// Options.AppDBOnly (it does nothing when the store is open). The object
// store can be shared with a serving process.
func (a *App) OpenObjects(ctx context.Context) error {
	if a.Objects != nil {
		return nil
	}
	return a.openObjects(ctx)
}

// OpenTimeSeries opens the time-series store of an app opened with
// Options.AppDBOnly (it does nothing when the store is open). The embedded
// store admits one process at a time: when another holds it, the error
// satisfies StoreLocked and the app stays usable without it.
func (a *App) OpenTimeSeries(ctx context.Context) error {
	if a.TS != nil {
		return nil
	}
	return a.openTSDB(ctx)
}

// StoreLocked reports whether err is Open's failure on a data directory
// whose embedded time-series store another process (vigil serve) holds.
func StoreLocked(err error) bool { return errors.Is(err, embedts.ErrLocked) }
