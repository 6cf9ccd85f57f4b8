package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Bus topics and the consumer group of the engine.
const (
	// TopicTelemetry carries stored readings, one message per device and
	// write batch, keyed by device (see Messages).
	TopicTelemetry = "telemetry"
	// GroupDetect is the consumer group of the detection engine on
	// TopicTelemetry.
	GroupDetect = "detect"
	// TopicAnomalies is the outbox topic of anomaly notifications (see
	// Notification).
	TopicAnomalies = "anomalies"
)

// Writer is the write side of the time-series store.
type Writer interface {
	WritePoints(ctx context.Context, points []telemetry.Point) error
}

// Messages encodes points as TopicTelemetry messages: one message per device
// (in order of first appearance), Key the device (DeviceOf), Payload the
// device's points as line protocol with millisecond timestamps. Points with a
// NaN or infinite value are left out: detectors treat them as missing.
func Messages(points []telemetry.Point) ([]bus.Message, error) {
	var order []string
	byDev := map[string][]telemetry.Point{}
	for _, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		d := DeviceOf(p.Series)
		if _, ok := byDev[d]; !ok {
			order = append(order, d)
		}
		byDev[d] = append(byDev[d], p)
	}
	msgs := make([]bus.Message, 0, len(order))
	for _, d := range order {
		body, err := telemetry.AppendPoints(nil, byDev[d], telemetry.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("encode telemetry of device %q: %w", d, err)
		}
		msgs = append(msgs, bus.Message{Key: d, Payload: body})
	}
	return msgs, nil
}

// DecodeMessage decodes a TopicTelemetry message made by Messages.
func DecodeMessage(msg bus.Message) ([]telemetry.Point, error) {
	return decodeWith(newParser(), msg)
}

func newParser() *telemetry.LineParser {
	return telemetry.NewLineParser(telemetry.LineOptions{Precision: telemetry.Millisecond})
}

func decodeWith(p *telemetry.LineParser, msg bus.Message) ([]telemetry.Point, error) {
	res := p.Parse(nil, msg.Payload)
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("decode telemetry message %s (key %q): %w", msg.ID, msg.Key, err)
	}
	return res.Points, nil
}

// DeviceOf returns the device a series belongs to for detection: the value
// of its device tag, or "untagged:" + measurement for a series without one.
func DeviceOf(s telemetry.Series) string {
	if d := s.Device(); d != "" {
		return d
	}
	return untaggedPrefix + s.Measurement
}

const untaggedPrefix = "untagged:"

// deviceSelector selects every series of device id (see DeviceOf).
func deviceSelector(id string) timeseries.Selector {
	if m, ok := strings.CutPrefix(id, untaggedPrefix); ok {
		return timeseries.Selector{Measurement: m, Tags: []timeseries.Matcher{{Key: telemetry.DeviceTag, Op: timeseries.MatchEqual, Value: ""}}}
	}
	return timeseries.Selector{Tags: []timeseries.Matcher{{Key: telemetry.DeviceTag, Op: timeseries.MatchEqual, Value: id}}}
}

// PublishingWriter writes through W and then publishes what was written to
// TopicTelemetry on Pub, so that the detection engine scores it. It
// publishes only after the write is durable, and only the points written
// (a *timeseries.PartialWriteError's rejected points are left out).
//
// When publishing fails, WritePoints returns an error (joined with the
// write's own, if any) although the points are stored: the client retries,
// the rewrite is an idempotent no-op and the publish is attempted again.
type PublishingWriter struct {
	W   Writer
	Pub bus.Publisher
}

// WritePoints implements Writer.
func (w *PublishingWriter) WritePoints(ctx context.Context, points []telemetry.Point) error {
	werr := w.W.WritePoints(ctx, points)
	written := points
	if werr != nil {
		var pe *timeseries.PartialWriteError
		if !errors.As(werr, &pe) {
			return werr
		}
		failed := make(map[int]bool, len(pe.Failed))
		for _, f := range pe.Failed {
			failed[f.Index] = true
		}
		written = make([]telemetry.Point, 0, len(points)-len(failed))
		for i, p := range points {
			if !failed[i] {
				written = append(written, p)
			}
		}
	}
	if len(written) == 0 {
		return werr
	}
	msgs, err := Messages(written)
	if err != nil {
		return errors.Join(werr, err)
	}
	if len(msgs) == 0 {
		return werr
	}
	if err := w.Pub.Publish(ctx, TopicTelemetry, msgs...); err != nil {
		return errors.Join(werr, fmt.Errorf("publish %d points for detection: %w", len(written), err))
	}
	return werr
}
