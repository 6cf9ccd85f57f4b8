// Package ingest accepts telemetry writes: it decodes bodies (InfluxDB line
// protocol, Vigil's JSON points), enforces the write limits (body size, line
// size, fields per line, series cardinality, concurrent writes), checks the
// writer's device prefix, and writes the points to the time-series store.
//
// It is transport-neutral: the HTTP routes (package httpapi) and the MQTT
// subscriber call an Ingester and map its error kinds to their protocol.
// The semantics of partial writes are specified in WRITES.md beside this
// file.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Error kinds of the ingester, beside telemetry.ErrInvalid, telemetry.ErrLimit
// (a rejected line) and the timeseries kinds (a rejected point or a failed
// store), which it passes through wrapped.
var (
	// ErrBodyTooLarge: the body, after decompression, exceeds
	// Limits.MaxBodyBytes. Nothing was written.
	ErrBodyTooLarge = errors.New("body too large")
	// ErrUnsupportedEncoding: the body's content encoding is neither
	// identity nor gzip. Nothing was written.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrForbiddenDevice: a point names a device outside the writer's
	// device prefix. Nothing was written.
	ErrForbiddenDevice = errors.New("device not allowed for this token")
	// ErrSeriesLimit: a point would create a series beyond
	// Limits.MaxSeries or Limits.MaxSeriesPerDevice; it was not written.
	ErrSeriesLimit = errors.New("series limit reached")
	// ErrBusy: Limits.MaxInFlight writes are already in progress. Nothing
	// was written; the client should retry later.
	ErrBusy = errors.New("too many writes in progress")
)

// Writer is the part of timeseries.Repository the ingester writes through.
type Writer interface {
	WritePoints(ctx context.Context, points []telemetry.Point) error
}

// SeriesLister is the part of timeseries.Repository that Seed reads.
type SeriesLister interface {
	ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error)
}

// Limits bound what a write may contain. A zero field takes its value from
// DefaultLimits; a negative field means no limit.
type Limits struct {
	// MaxBodyBytes bounds a body after decompression.
	MaxBodyBytes int64
	// Line bounds each line of line protocol and each JSON point.
	Line telemetry.Limits
	// MaxSeries bounds the distinct series in the store (as counted by
	// this process: see Seed).
	MaxSeries int
	// MaxSeriesPerDevice bounds the distinct series of one device.
	MaxSeriesPerDevice int
	// MaxInFlight bounds the writes processed at once; more are refused
	// with ErrBusy.
	MaxInFlight int
}

// DefaultLimits returns the limits used for zero fields of Limits: 32 MiB
// bodies, telemetry.DefaultLimits per line, 1,000,000 series, 10,000 series
// per device and 64 writes in flight.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:       32 << 20,
		Line:               telemetry.DefaultLimits(),
		MaxSeries:          1_000_000,
		MaxSeriesPerDevice: 10_000,
		MaxInFlight:        64,
	}
}

func (l Limits) resolve() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxSeries == 0 {
		l.MaxSeries = d.MaxSeries
	}
	if l.MaxSeriesPerDevice == 0 {
		l.MaxSeriesPerDevice = d.MaxSeriesPerDevice
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = d.MaxInFlight
	}
	return l
}

// Options configure an Ingester.
type Options struct {
	Limits Limits
	// Now is the clock giving the time of points without timestamp. Nil
	// means time.Now.
	Now func() time.Time
	// Logger receives store failures. Nil discards.
	Logger *slog.Logger
}

// Ingester validates and writes batches of points. It is safe for concurrent
// use.
type Ingester struct {
	w       Writer
	lim     Limits
	now     func() time.Time
	log     *slog.Logger
	sem     chan struct{} // nil: no in-flight limit
	card    *cardinality
	parsers [telemetry.Hour + 1]sync.Pool // of *lineState, by precision
	// pointBufs is a free list of point buffers.
	pointBufs chan []telemetry.Point
}

// New returns an Ingester writing to w.
func New(w Writer, opts Options) *Ingester {
	in := &Ingester{w: w, lim: opts.Limits.resolve(), now: opts.Now, log: opts.Logger}
	if in.now == nil {
		in.now = time.Now
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.lim.MaxInFlight > 0 {
		in.sem = make(chan struct{}, in.lim.MaxInFlight)
	}
	in.pointBufs = make(chan []telemetry.Point, 8)
	in.card = newCardinality(in.lim.MaxSeries, in.lim.MaxSeriesPerDevice)
	return in
}

// Limits returns the resolved limits.
func (in *Ingester) Limits() Limits { return in.lim }

// Seed counts the series already stored with data in r, so that the series
// limits hold across restarts. Call it once at startup, before serving.
func (in *Ingester) Seed(ctx context.Context, l SeriesLister, r timeseries.Range) error {
	series, err := l.ListSeries(ctx, timeseries.Selector{}, r)
	if err != nil {
		return fmt.Errorf("seed series counter: %w", err)
	}
	in.card.seed(series)
	return nil
}

// SeriesCount returns the number of distinct series counted.
func (in *Ingester) SeriesCount() int { return in.card.count() }

// Request is one write.
type Request struct {
	// DevicePrefix, when not empty, limits the write to points whose
	// device tag starts with it.
	DevicePrefix string
	// Precision is the unit of line-protocol timestamps.
	Precision telemetry.Precision
}

// Result counts what a write did.
type Result struct {
	Lines         int // valid data lines (or JSON point objects) parsed
	RejectedLines int // lines (or JSON objects) refused by the parser
	Points        int // points written durably
	// RejectedPoints counts the points of valid lines refused by the series
	// limits or by the store.
	RejectedPoints int
}

// Rejected reports whether anything was refused.
func (r Result) Rejected() bool { return r.RejectedLines > 0 || r.RejectedPoints > 0 }

// PartialError reports a write of which some lines or points were refused.
// Every point not refused was written durably. It wraps the error of the
// first refusal, so errors.Is finds its kind.
type PartialError struct {
	Result Result
	// First is the first refusal: a *telemetry.LineError or
	// *telemetry.ObjectError, an ErrSeriesLimit, or a store error naming
	// the series and time (wrapping a timeseries kind).
	First error
}

func (e *PartialError) Error() string {
	r := e.Result
	return fmt.Sprintf("partial write: %v (%d points written; rejected %d lines, %d points) dropped=%d",
		e.First, r.Points, r.RejectedLines, r.RejectedPoints, r.RejectedLines+r.RejectedPoints)
}

// Unwrap returns the first refusal.
func (e *PartialError) Unwrap() error { return e.First }

// lineState is a pooled parser. Parsers cache series parts between bodies;
// losing one to the GC only costs that cache.
type lineState struct {
	p *telemetry.LineParser
}

// maxKeptPoints bounds the capacity of a point buffer kept for reuse.
const maxKeptPoints = 1 << 20

// getPoints returns an empty point buffer, reused when one is free. Point
// buffers of large batches are megabytes: they are kept in a free list, not
// a sync.Pool, so that a GC does not drop them between two batches.
func (in *Ingester) getPoints() []telemetry.Point {
	select {
	case pts := <-in.pointBufs:
		return pts
	default:
		return nil
	}
}

func (in *Ingester) putPoints(pts []telemetry.Point) {
	if cap(pts) > maxKeptPoints || cap(pts) == 0 {
		return
	}
	clear(pts) // drop references to the series of the body
	select {
	case in.pointBufs <- pts[:0]:
	default:
	}
}

// WriteLineProtocol parses body as line protocol and writes the points of
// its valid lines. It returns nil when everything was written, a
// *PartialError when some lines or points were refused (the others are
// written), and another error (ErrBusy, ErrForbiddenDevice, a store failure)
// when nothing was written. body is not retained.
func (in *Ingester) WriteLineProtocol(ctx context.Context, req Request, body []byte) (Result, error) {
	if err := in.acquire(); err != nil {
		return Result{}, err
	}
	defer in.release()
	if int(req.Precision) >= len(in.parsers) {
		return Result{}, fmt.Errorf("write line protocol: precision %v: %w", req.Precision, telemetry.ErrInvalid)
	}
	pool := &in.parsers[req.Precision]
	st, _ := pool.Get().(*lineState)
	if st == nil {
		st = &lineState{p: telemetry.NewLineParser(telemetry.LineOptions{
			Precision: req.Precision, Now: in.now, Limits: in.lim.Line, MaxErrors: 1,
		})}
	}
	pr := st.p.Parse(in.getPoints(), body)
	defer func() {
		in.putPoints(pr.Points)
		pool.Put(st)
	}()
	res := Result{Lines: pr.Lines, RejectedLines: pr.Rejected}
	var first error
	if pr.Rejected > 0 {
		if len(pr.Errors) > 0 {
			first = pr.Errors[0]
		} else {
			first = fmt.Errorf("%d lines rejected: %w", pr.Rejected, telemetry.ErrInvalid)
		}
	}
	return in.write(ctx, req, pr.Points, res, first)
}

// WriteJSON parses body as JSON points (telemetry.ParseJSON) and writes the
// points of its valid objects, with the results of WriteLineProtocol. A body
// that is not well-formed JSON is refused as a whole (error wrapping
// telemetry.ErrInvalid, nothing written).
func (in *Ingester) WriteJSON(ctx context.Context, req Request, body []byte) (Result, error) {
	if err := in.acquire(); err != nil {
		return Result{}, err
	}
	defer in.release()
	jr, err := telemetry.ParseJSON(nil, body, telemetry.JSONOptions{Now: in.now, Limits: in.lim.Line, MaxErrors: 1})
	if err != nil {
		return Result{}, fmt.Errorf("write json points: %w", err)
	}
	res := Result{Lines: jr.Objects, RejectedLines: jr.Rejected}
	var first error
	if jr.Rejected > 0 {
		if len(jr.Errors) > 0 {
			first = jr.Errors[0]
		} else {
			first = fmt.Errorf("%d points rejected: %w", jr.Rejected, telemetry.ErrInvalid)
		}
	}
	return in.write(ctx, req, jr.Points, res, first)
}

// WritePoints writes points decoded elsewhere under the same checks as
// WriteLineProtocol, except parsing (Result.Lines stays 0). The points'
// Series must be valid with sorted tags. points may be reordered and
// filtered in place. Transports that receive line protocol or JSON (MQTT)
// should call WriteLineProtocol or WriteJSON instead.
func (in *Ingester) WritePoints(ctx context.Context, req Request, points []telemetry.Point) (Result, error) {
	if err := in.acquire(); err != nil {
		return Result{}, err
	}
	defer in.release()
	return in.write(ctx, req, points, Result{}, nil)
}

func (in *Ingester) acquire() error {
	if in.sem == nil {
		return nil
	}
	select {
	case in.sem <- struct{}{}:
		return nil
	default:
		return fmt.Errorf("write: %d writes in progress, limit MaxInFlight=%d: %w", in.lim.MaxInFlight, in.lim.MaxInFlight, ErrBusy)
	}
}

func (in *Ingester) release() {
	if in.sem != nil {
		<-in.sem
	}
}

// write applies the device prefix and series limits to pts, writes the rest,
// and assembles the result. res and first carry the parse outcome.
func (in *Ingester) write(ctx context.Context, req Request, pts []telemetry.Point, res Result, first error) (Result, error) {
	if req.DevicePrefix != "" {
		for _, p := range pts {
			if d := p.Series.Device(); !strings.HasPrefix(d, req.DevicePrefix) {
				return Result{}, fmt.Errorf("write: device %q (series %s) is outside the token's device prefix %q: %w",
					d, p.Series.Key(), req.DevicePrefix, ErrForbiddenDevice)
			}
		}
	}
	pts, refused, cardErr := in.card.admit(pts)
	res.RejectedPoints += refused
	if first == nil && cardErr != nil {
		first = cardErr
	}
	if len(pts) > 0 {
		err := in.w.WritePoints(ctx, pts)
		var pwe *timeseries.PartialWriteError
		switch {
		case err == nil:
			res.Points += len(pts)
		case errors.As(err, &pwe):
			res.Points += len(pts) - len(pwe.Failed)
			res.RejectedPoints += len(pwe.Failed)
			if first == nil && len(pwe.Failed) > 0 {
				f := pwe.Failed[0]
				first = fmt.Errorf("series %s at %s: %w", f.Point.Series.Key(),
					telemetry.FromMillis(f.Point.Time).Format(time.RFC3339Nano), f.Err)
			}
		default:
			// Nothing of this batch is known written: report the store
			// failure as the outcome, not as a partial write.
			return res, fmt.Errorf("write %d points: %w", len(pts), err)
		}
	}
	if first != nil || res.Rejected() {
		if first == nil {
			first = fmt.Errorf("%d points rejected: %w", res.RejectedPoints, telemetry.ErrInvalid)
		}
		return res, &PartialError{Result: res, First: first}
	}
	return res, nil
}
