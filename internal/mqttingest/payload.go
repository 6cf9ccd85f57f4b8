package mqttingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Writer is what the MQTT ingest needs of the ingest pipeline;
// *ingest.Ingester implements it.
type Writer interface {
	WritePoints(ctx context.Context, req ingest.Request, points []telemetry.Point) (ingest.Result, error)
	Limits() ingest.Limits
}

// Decoder turns one MQTT message into points of the topic's device.
// Payloads starting with '{' or '[' are JSON points, anything else is line
// protocol with the configured precision. A point without a device tag gets
// the topic's; a point naming another device is refused: a device writes
// only its own series.
type Decoder struct {
	prec  telemetry.Precision
	now   func() time.Time
	lim   telemetry.Limits
	lines sync.Pool // of *telemetry.LineParser
}

// NewDecoder returns a Decoder. now gives the time of points without one.
func NewDecoder(prec telemetry.Precision, lim telemetry.Limits, now func() time.Time) *Decoder {
	if now == nil {
		now = time.Now
	}
	return &Decoder{prec: prec, now: now, lim: lim}
}

// Decode parses payload. It returns the points of the valid records, the
// counts for an ingest.Result, and the first refusal (nil when none).
func (d *Decoder) Decode(device string, payload []byte) ([]telemetry.Point, ingest.Result, error) {
	var (
		pts   []telemetry.Point
		res   ingest.Result
		first error
	)
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		jr, err := telemetry.ParseJSON(nil, payload, telemetry.JSONOptions{Now: d.now, Limits: d.lim, MaxErrors: 1})
		if err != nil {
			return nil, res, fmt.Errorf("device %s: %w", device, err)
		}
		pts, res.Lines, res.RejectedLines, first = jr.Points, jr.Objects, jr.Rejected, jr.Err()
	} else {
		p, _ := d.lines.Get().(*telemetry.LineParser)
		if p == nil {
			p = telemetry.NewLineParser(telemetry.LineOptions{Precision: d.prec, Now: d.now, Limits: d.lim, MaxErrors: 1})
		}
		pr := p.Parse(nil, payload)
		d.lines.Put(p)
		pts, res.Lines, res.RejectedLines, first = pr.Points, pr.Lines, pr.Rejected, pr.Err()
	}
	kept := pts[:0]
	for _, pt := range pts {
		switch dev := pt.Series.Device(); dev {
		case device:
			kept = append(kept, pt)
		case "":
			pt.Series = telemetry.NewSeries(pt.Series.Measurement, append(pt.Series.Tags, telemetry.Tag{Key: telemetry.DeviceTag, Value: device}), pt.Series.Field)
			kept = append(kept, pt)
		default:
			res.RejectedPoints++
			if first == nil {
				first = fmt.Errorf("series %s names device %q but was published on the topic of device %q: %w", pt.Series.Key(), dev, device, ErrInvalid)
			}
		}
	}
	return kept, res, first
}

// write decodes and writes one message. The error is nil when the message
// may be acknowledged: written, or refused for good (then logged by the
// caller through refused). A non-nil error means "not durable, do not
// acknowledge".
func write(ctx context.Context, w Writer, dec *Decoder, device string, payload []byte) (refused error, err error) {
	pts, _, first := dec.Decode(device, payload)
	if len(pts) == 0 {
		return first, nil
	}
	_, err = w.WritePoints(ctx, ingest.Request{Precision: dec.prec}, pts)
	var pe *ingest.PartialError
	switch {
	case err == nil:
		return first, nil
	case errors.As(err, &pe), permanent(err):
		return errors.Join(first, err), nil
	}
	return nil, err
}

// permanent reports whether a write error can never succeed on retry.
func permanent(err error) bool {
	for _, kind := range []error{telemetry.ErrInvalid, telemetry.ErrLimit, ErrInvalid, ingest.ErrForbiddenDevice,
		ingest.ErrSeriesLimit, timeseries.ErrInvalid, timeseries.ErrOutOfWindow, timeseries.ErrConflict} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}
