// Package timeseries defines the time-series store of Vigil: the Repository
// contract that every backend (embedded TSDB, PostgreSQL, InfluxDB) implements,
// its query types and its error kinds. The conformance suite every backend
// runs is in package timeseriestest.
package timeseries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// Error kinds. Backends wrap them; callers test with errors.Is.
var (
	// ErrOutOfWindow: a point's timestamp is older than the accepted
	// out-of-order window (or the retention), or too far in the future.
	ErrOutOfWindow = errors.New("timestamp outside the accepted window")
	// ErrConflict: a point rewrites an existing (series, timestamp) with a
	// different value. The first write wins; the rewrite is not stored.
	ErrConflict = errors.New("different value already stored at this timestamp")
	// ErrInvalid: a point or query is malformed (empty measurement or field,
	// start after end, step not positive, unknown aggregate, ...).
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the repository has been closed.
	ErrClosed = errors.New("repository closed")
	// ErrUnavailable: the backend cannot be reached; the operation may be
	// retried.
	ErrUnavailable = errors.New("time-series backend unavailable")
)

// PointError is the failure of one point of a batch.
type PointError struct {
	Index int // index of the point in the batch passed to WritePoints
	Point telemetry.Point
	Err   error // wraps one of the error kinds
}

func (e PointError) Error() string {
	return fmt.Sprintf("point %d (%s @ %d): %v", e.Index, e.Point.Series.Key(), e.Point.Time, e.Err)
}

func (e PointError) Unwrap() error { return e.Err }

// PartialWriteError reports a batch of which some points were rejected. Every
// point not listed in Failed was written durably.
type PartialWriteError struct {
	Written int
	Failed  []PointError
}

func (e *PartialWriteError) Error() string {
	if len(e.Failed) == 0 {
		return fmt.Sprintf("partial write: %d written", e.Written)
	}
	return fmt.Sprintf("partial write: %d written, %d rejected; first: %v", e.Written, len(e.Failed), e.Failed[0])
}

// Unwrap lets errors.Is match the kind of any rejected point.
func (e *PartialWriteError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// MatchOp is how a Matcher compares a tag value.
type MatchOp int

// Matcher operations.
const (
	MatchEqual MatchOp = iota
	MatchNotEqual
	MatchRegexp    // full match of an RE2 expression
	MatchNotRegexp // no full match of an RE2 expression
)

// Matcher selects series by one tag. A missing tag has the value "".
type Matcher struct {
	Key   string
	Op    MatchOp
	Value string
}

// Selector selects series. Empty Measurement or Field match every value.
type Selector struct {
	Measurement string
	Field       string
	Tags        []Matcher
}

// Sample is one stored (time, value) pair; Time in Unix milliseconds.
type Sample struct {
	Time  int64
	Value float64
}

// SeriesSamples is one series with its samples in ascending time order.
type SeriesSamples struct {
	Series  telemetry.Series
	Samples []Sample
}

// Aggregate is a downsampling function.
type Aggregate string

// Supported aggregates.
const (
	AggAvg   Aggregate = "avg"
	AggMin   Aggregate = "min"
	AggMax   Aggregate = "max"
	AggSum   Aggregate = "sum"
	AggCount Aggregate = "count"
	AggFirst Aggregate = "first"
	AggLast  Aggregate = "last"
)

// Aggregates lists every supported aggregate.
var Aggregates = []Aggregate{AggAvg, AggMin, AggMax, AggSum, AggCount, AggFirst, AggLast}

// ParseAggregate returns the Aggregate named s, or an error wrapping ErrInvalid
// that lists the valid names.
func ParseAggregate(s string) (Aggregate, error) {
	for _, a := range Aggregates {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("aggregate %q: %w (valid: avg, min, max, sum, count, first, last)", s, ErrInvalid)
}

// Bucket is one step of a downsampled series. Start is aligned to the step
// (Start % step == 0 in Unix milliseconds). Values are in the order of the
// aggregates requested. Buckets without samples are omitted, and so are
// buckets whose samples are all NaN (aggregates skip NaN).
type Bucket struct {
	Start  int64
	Values []float64
}

// SeriesBuckets is one downsampled series, buckets in ascending time.
type SeriesBuckets struct {
	Series  telemetry.Series
	Buckets []Bucket
}

// Range is a half-open time interval [Start, End) in Unix milliseconds.
type Range struct {
	Start, End int64
}

// Repository stores numeric series. Implementations are safe for concurrent
// use.
//
// Durability: when WritePoints returns (nil or a *PartialWriteError) every
// point it reports written survives a process crash (kill -9).
//
// Idempotency: writes are keyed by (series, timestamp). Rewriting the same
// value is a no-op and not an error. Rewriting a different value is rejected
// with ErrConflict: the first write wins. Values are compared by bit pattern
// after NaN normalisation (so -0 differs from +0, and all NaNs are equal).
//
// NaN: a NaN value (any bit pattern) is stored as the canonical NaN and read
// back as NaN; aggregates skip NaN samples (count counts non-NaN samples).
// ±Inf are stored and aggregated as IEEE 754 prescribes.
//
// Results are sorted by series key, samples by time. Empty results are not
// errors.
type Repository interface {
	// WritePoints writes a batch. On rejection of some points it writes
	// the rest and returns a *PartialWriteError listing each rejected point.
	// A cancelled context before commit leaves nothing of the batch written.
	WritePoints(ctx context.Context, points []telemetry.Point) error
	// QueryRange returns the raw samples of every series matching sel in r.
	QueryRange(ctx context.Context, sel Selector, r Range) ([]SeriesSamples, error)
	// Downsample aggregates every series matching sel in r into buckets of
	// step, aligned to multiples of step since the Unix epoch. step must be
	// a positive whole number of milliseconds and aggs non-empty, else
	// ErrInvalid.
	Downsample(ctx context.Context, sel Selector, r Range, step time.Duration, aggs []Aggregate) ([]SeriesBuckets, error)
	// ListSeries returns the series matching sel that have data in r.
	ListSeries(ctx context.Context, sel Selector, r Range) ([]telemetry.Series, error)
	// DeleteBefore deletes, for real, every sample older than cutoff (Unix
	// ms). Retention policies call it; after it returns, no query sees the
	// deleted samples.
	DeleteBefore(ctx context.Context, cutoff int64) error
	// Close flushes and releases the store. It is idempotent.
	Close() error
}
