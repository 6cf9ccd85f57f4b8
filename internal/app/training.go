package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// trainLockKey serialises scheduled training across processes sharing the
// stores: one trainer at a time.
const trainLockKey = "vigil/lock/scheduled-training"

// keepModelVersions is how many versions of a model scheduled training
// keeps (the active one is always kept).
const keepModelVersions = 5

// runTraining trains a candidate model for every device with history in the
// last TrainWindow, every TrainEvery, until ctx ends.
func (a *App) runTraining(ctx context.Context) error {
	if a.cfg.TrainEvery <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.TrainEvery.Std())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := a.TrainDevices(ctx); err != nil && ctx.Err() == nil {
			a.opts.Logger.Error("scheduled training failed; will retry at the next interval", "err", err, "trained", n)
		}
	}
}

// TrainDevices trains one candidate model per device that has readings in
// the last TrainWindow and prunes old versions. It returns how many models
// it trained. Another process holding the training lock makes it skip this
// round.
func (a *App) TrainDevices(ctx context.Context) (int, error) {
	reg, err := a.SharedModels()
	if err != nil {
		return 0, err
	}
	lock, err := a.Locker.Lock(ctx, trainLockKey, a.cfg.TrainEvery.Std()+time.Minute)
	if errors.Is(err, cache.ErrLocked) {
		a.opts.Logger.Info("scheduled training skipped: another process is training")
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("scheduled training: lock: %w", err)
	}
	defer a.Locker.Unlock(context.WithoutCancel(ctx), trainLockKey, lock.Token)

	now := a.opts.Now()
	r := timeseries.Range{Start: telemetry.Millis(now.Add(-a.cfg.TrainWindow.Std())), End: telemetry.Millis(now) + 1}
	series, err := a.TS.ListSeries(ctx, timeseries.Selector{}, r)
	if err != nil {
		return 0, fmt.Errorf("scheduled training: list series: %w", err)
	}
	var devices []string
	for _, s := range series {
		if d := s.Device(); d != "" && !slices.Contains(devices, d) {
			devices = append(devices, d)
		}
	}
	trained := 0
	var errs []error
	for _, d := range devices {
		scope := models.DeviceScope(d)
		meta, err := reg.Train(ctx, scope, r)
		if errors.Is(err, models.ErrNoData) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d, err))
			continue
		}
		trained++
		a.opts.Logger.Info("trained candidate model", "model", meta.Name, "version", meta.Version)
		if _, err := reg.Prune(ctx, scope.Name(), keepModelVersions); err != nil {
			errs = append(errs, fmt.Errorf("prune %s: %w", scope.Name(), err))
		}
	}
	return trained, errors.Join(errs...)
}
