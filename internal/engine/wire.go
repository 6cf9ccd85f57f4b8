package engine

import (
	"bytes"
	"context"
	"encoding/binary"
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
// device's points in the binary telemetry encoding (see "Telemetry
// messages" in the package documentation), in their order. Points with a
// NaN or infinite value are left out: detectors treat them as missing.
func Messages(points []telemetry.Point) ([]bus.Message, error) {
	var enc encoder
	return enc.messages(points)
}

// encoder builds telemetry messages.
type encoder struct {
	key   []byte
	devs  []*devBuf
	byDev map[string]*devBuf

	// The measurement and tags of the previous point, their key prefix
	// (without the separating space) and device: the fields of one line
	// share them.
	lastM    string
	lastTags telemetry.Tags
	prefix   []byte
	lastDev  *devBuf
}

// devBuf is the encoding of one device's points in progress.
type devBuf struct {
	id     string
	keys   []byte            // dictionary: uvarint length, key bytes
	spans  [][2]int          // start and end of each key in keys
	index  map[string]uint64 // key → position, once the dictionary is long
	nkeys  uint64
	points []byte // series index, time delta, value
	n      uint64
	last   int64
}

// linearKeys is the dictionary size up to which lookup scans it rather
// than using a map.
const linearKeys = 32

// lookup returns the dictionary position of key, adding it if new.
func (b *devBuf) lookup(key []byte) (uint64, error) {
	if b.index != nil {
		if x, ok := b.index[string(key)]; ok {
			return x, nil
		}
	} else {
		for i, sp := range b.spans {
			if bytes.Equal(b.keys[sp[0]:sp[1]], key) {
				return uint64(i), nil
			}
		}
	}
	if len(key) > maxWireKey {
		return 0, fmt.Errorf("encode telemetry of device %q: series key of %d bytes, longer than %d", b.id, len(key), maxWireKey)
	}
	x := b.nkeys
	b.nkeys++
	b.keys = binary.AppendUvarint(b.keys, uint64(len(key)))
	b.spans = append(b.spans, [2]int{len(b.keys), len(b.keys) + len(key)})
	b.keys = append(b.keys, key...)
	if b.index == nil && len(b.spans) > linearKeys {
		b.index = make(map[string]uint64, 2*len(b.spans))
		for i, sp := range b.spans {
			b.index[string(b.keys[sp[0]:sp[1]])] = uint64(i)
		}
	} else if b.index != nil {
		b.index[string(key)] = x
	}
	return x, nil
}

func sameTags(a, b telemetry.Tags) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (enc *encoder) messages(points []telemetry.Point) ([]bus.Message, error) {
	enc.byDev = map[string]*devBuf{}
	enc.lastDev = nil
	for _, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		if enc.lastDev == nil || p.Series.Measurement != enc.lastM || !sameTags(p.Series.Tags, enc.lastTags) {
			d := DeviceOf(p.Series)
			b := enc.byDev[d]
			if b == nil {
				b = &devBuf{id: d}
				enc.byDev[d] = b
				enc.devs = append(enc.devs, b)
			}
			enc.lastDev, enc.lastM, enc.lastTags = b, p.Series.Measurement, p.Series.Tags
			// The key of the series with an empty field ends in a space.
			enc.prefix = telemetry.Series{Measurement: p.Series.Measurement, Tags: p.Series.Tags}.AppendKey(enc.prefix[:0])
			enc.prefix = enc.prefix[:len(enc.prefix)-1]
		}
		b := enc.lastDev
		// A key with an empty measurement and no tags is " " + the field.
		enc.key = telemetry.Series{Field: p.Series.Field}.AppendKey(append(enc.key[:0], enc.prefix...))
		idx, err := b.lookup(enc.key)
		if err != nil {
			return nil, err
		}
		b.points = binary.AppendUvarint(b.points, idx)
		b.points = binary.AppendVarint(b.points, p.Time-b.last)
		b.points = binary.LittleEndian.AppendUint64(b.points, math.Float64bits(p.Value))
		b.last = p.Time
		b.n++
	}
	msgs := make([]bus.Message, 0, len(enc.devs))
	for _, b := range enc.devs {
		body := make([]byte, 0, len(wireMagic)+1+2*binary.MaxVarintLen64+len(b.keys)+len(b.points))
		body = append(body, wireMagic...)
		body = append(body, wireVersion)
		body = binary.AppendUvarint(body, b.nkeys)
		body = append(body, b.keys...)
		body = binary.AppendUvarint(body, b.n)
		body = append(body, b.points...)
		msgs = append(msgs, bus.Message{Key: b.id, Payload: body})
	}
	return msgs, nil
}

// The binary telemetry encoding.
const (
	wireMagic   = "VGT"
	wireVersion = 1
	// maxWireKey bounds a series key in a message.
	maxWireKey = 64 << 10
	// minWirePoint is the smallest encoded point: a one-byte series index,
	// a one-byte time delta and eight value bytes.
	minWirePoint = 10
)

// ErrBadMessage is wrapped by the errors of DecodeMessage: a payload that is
// not a telemetry message of a version this engine reads.
var ErrBadMessage = errors.New("malformed telemetry message")

// DecodeMessage decodes a TopicTelemetry message made by Messages. A
// payload of another encoding version, truncated, with trailing bytes or
// with a malformed series key is an error wrapping ErrBadMessage.
func DecodeMessage(msg bus.Message) ([]telemetry.Point, error) {
	var dec decoder
	pts, _, err := dec.decode(msg)
	return pts, err
}

// decoder decodes telemetry messages, caching the series it parsed (up to
// maxDecoderSeries) so that a series' key is parsed once.
type decoder struct {
	series map[string]parsedSeries
	dict   []telemetry.Series
	keys   []string
}

// maxDecoderSeries bounds a decoder's cache of parsed series; beyond it
// the cache starts afresh.
const maxDecoderSeries = 1 << 16

type parsedSeries struct {
	s   telemetry.Series
	key string
}

// decode returns the points of msg and the key of each point's series.
func (dec *decoder) decode(msg bus.Message) ([]telemetry.Point, []string, error) {
	b := msg.Payload
	bad := func(format string, args ...any) error {
		return fmt.Errorf("decode telemetry message %s (key %q): %w: %s", msg.ID, msg.Key, ErrBadMessage, fmt.Sprintf(format, args...))
	}
	if len(b) < len(wireMagic)+1 || string(b[:len(wireMagic)]) != wireMagic {
		return nil, nil, bad("not the binary telemetry encoding (no %q header)", wireMagic)
	}
	if v := b[len(wireMagic)]; v != wireVersion {
		return nil, nil, bad("encoding version %d, this engine reads version %d", v, wireVersion)
	}
	b = b[len(wireMagic)+1:]
	uvarint := func(what string) (uint64, error) {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, bad("truncated or overlong %s", what)
		}
		b = b[n:]
		return x, nil
	}
	nkeys, err := uvarint("series count")
	if err != nil {
		return nil, nil, err
	}
	if nkeys > uint64(len(b)) {
		return nil, nil, bad("%d series in %d bytes", nkeys, len(b))
	}
	if dec.series == nil || len(dec.series) > maxDecoderSeries {
		dec.series = map[string]parsedSeries{}
	}
	dec.dict, dec.keys = dec.dict[:0], dec.keys[:0]
	for i := range nkeys {
		n, err := uvarint("series key length")
		if err != nil {
			return nil, nil, err
		}
		if n > uint64(len(b)) {
			return nil, nil, bad("series %d: key of %d bytes, %d left", i, n, len(b))
		}
		kb := b[:n]
		b = b[n:]
		ps, ok := dec.series[string(kb)]
		if !ok {
			ps.key = string(kb)
			if ps.s, err = telemetry.ParseSeriesKey(ps.key); err != nil {
				return nil, nil, bad("series %d: %v", i, err)
			}
			dec.series[ps.key] = ps
		}
		dec.dict = append(dec.dict, ps.s)
		dec.keys = append(dec.keys, ps.key)
	}
	npts, err := uvarint("point count")
	if err != nil {
		return nil, nil, err
	}
	if npts > uint64(len(b)/minWirePoint) {
		return nil, nil, bad("%d points in %d bytes", npts, len(b))
	}
	pts := make([]telemetry.Point, 0, npts)
	keys := make([]string, 0, npts)
	var t int64
	for i := range npts {
		x, err := uvarint("series index")
		if err != nil {
			return nil, nil, err
		}
		if x >= nkeys {
			return nil, nil, bad("point %d: series %d of %d", i, x, nkeys)
		}
		d, n := binary.Varint(b)
		if n <= 0 {
			return nil, nil, bad("point %d: truncated or overlong time", i)
		}
		b = b[n:]
		if len(b) < 8 {
			return nil, nil, bad("point %d: truncated value", i)
		}
		t += d
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		pts = append(pts, telemetry.Point{Series: dec.dict[x], Time: t, Value: v})
		keys = append(keys, dec.keys[x])
	}
	if len(b) > 0 {
		return nil, nil, bad("%d bytes after the last point", len(b))
	}
	return pts, keys, nil
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
