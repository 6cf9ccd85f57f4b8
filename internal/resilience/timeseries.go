package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// TimeSeriesName is the dependency name under which the TimeSeries decorator
// runs its calls through the Policy: register the time-series health check
// under it so that the breaker state shows in the report.
const TimeSeriesName = "timeseries"

// TimeSeries returns repo decorated with p: reads (QueryRange, Downsample,
// ListSeries) and DeleteBefore are retried on errors p classifies retryable;
// WritePoints is retried only when the whole batch failed with
// timeseries.ErrUnavailable. That retry is harmless: writes are idempotent on
// (series, timestamp), so points of a batch that did reach the store before
// the failure are rewritten with the same value, a no-op. A batch with
// rejected points (*timeseries.PartialWriteError) is never retried: the
// rejections are about the points, not the store.
//
// Every call goes through the breaker named TimeSeriesName; while it is open
// calls fail at once with an error wrapping both ErrCircuitOpen and
// timeseries.ErrUnavailable, so that callers mapping ErrUnavailable to 503
// need not know about breakers. Close is passed through.
func TimeSeries(repo timeseries.Repository, p *Policy) timeseries.Repository {
	return &timeSeries{repo: repo, p: p}
}

type timeSeries struct {
	repo timeseries.Repository
	p    *Policy
}

var _ timeseries.Repository = (*timeSeries)(nil)

// unavailable makes an open-breaker error also match timeseries.ErrUnavailable.
func unavailable(err error) error {
	if errors.Is(err, ErrCircuitOpen) && !errors.Is(err, timeseries.ErrUnavailable) {
		return fmt.Errorf("%w: %w", timeseries.ErrUnavailable, err)
	}
	return err
}

// writeRetryable accepts whole-batch unavailability only.
func writeRetryable(err error) bool {
	var pe *timeseries.PartialWriteError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, timeseries.ErrUnavailable) && !errors.Is(err, context.Canceled)
}

func (t *timeSeries) WritePoints(ctx context.Context, points []telemetry.Point) error {
	return unavailable(t.p.do(ctx, TimeSeriesName, writeRetryable, func(ctx context.Context) error {
		return t.repo.WritePoints(ctx, points)
	}))
}

func (t *timeSeries) QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error) {
	v, err := Call(ctx, t.p, TimeSeriesName, func(ctx context.Context) ([]timeseries.SeriesSamples, error) {
		return t.repo.QueryRange(ctx, sel, r)
	})
	return v, unavailable(err)
}

func (t *timeSeries) Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error) {
	v, err := Call(ctx, t.p, TimeSeriesName, func(ctx context.Context) ([]timeseries.SeriesBuckets, error) {
		return t.repo.Downsample(ctx, sel, r, step, aggs)
	})
	return v, unavailable(err)
}

func (t *timeSeries) ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error) {
	v, err := Call(ctx, t.p, TimeSeriesName, func(ctx context.Context) ([]telemetry.Series, error) {
		return t.repo.ListSeries(ctx, sel, r)
	})
	return v, unavailable(err)
}

func (t *timeSeries) DeleteBefore(ctx context.Context, cutoff int64) error {
	return unavailable(t.p.Do(ctx, TimeSeriesName, func(ctx context.Context) error {
		return t.repo.DeleteBefore(ctx, cutoff)
	}))
}

func (t *timeSeries) Close() error { return t.repo.Close() }
