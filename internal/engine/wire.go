package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

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

// encoder builds telemetry messages in two passes: the first assigns each
// point its device and series, building the dictionaries and sizing the
// payloads; the second writes every payload into one allocation.
type encoder struct {
	key     []byte
	devs    []devBuf
	byDev   map[string]int32
	arena   []byte     // dictionary entries of every device: uvarint length, key
	entries []keyEntry // in arena, chained per device
	recs    []rec      // per point

	// The measurement and tags of the previous point, their key prefix
	// (without the separating space) and device: the fields of one line
	// share them.
	lastM    string
	lastTags telemetry.Tags
	prefix   []byte
	lastDev  int32
}

// keyEntry is one dictionary entry: arena[start:end] is its encoding,
// arena[key:end] the key; next chains the device's entries (-1 ends).
type keyEntry struct {
	start, key, end int
	next            int32
}

// rec is what the first pass decided of one point: dev -1 skips it.
type rec struct {
	dev   int32
	idx   uint32
	delta int64
}

// devBuf is one device's message in the making.
type devBuf struct {
	id          string
	first, last int32             // its dictionary entries
	nkeys       uint32            // dictionary size
	index       map[string]uint32 // key → position, once the dictionary is long
	n           uint64            // points
	size        int               // payload bytes
	lastT       int64             // time of its previous point
	off         int               // write position in the second pass
}

// linearKeys is the dictionary size up to which lookup scans it rather
// than using a map.
const linearKeys = 32

// lookup returns the dictionary position of key in device b, adding it
// if new.
func (enc *encoder) lookup(b *devBuf, key []byte) (uint32, error) {
	if b.index != nil {
		if x, ok := b.index[string(key)]; ok {
			return x, nil
		}
	} else {
		i := uint32(0)
		for e := b.first; e >= 0; e = enc.entries[e].next {
			en := &enc.entries[e]
			if bytes.Equal(enc.arena[en.key:en.end], key) {
				return i, nil
			}
			i++
		}
	}
	if len(key) > maxWireKey {
		return 0, fmt.Errorf("encode telemetry of device %q: series key of %d bytes, longer than %d", b.id, len(key), maxWireKey)
	}
	x := b.nkeys
	b.nkeys++
	en := keyEntry{start: len(enc.arena), next: -1}
	enc.arena = binary.AppendUvarint(enc.arena, uint64(len(key)))
	en.key = len(enc.arena)
	enc.arena = append(enc.arena, key...)
	en.end = len(enc.arena)
	b.size += en.end - en.start
	enc.entries = append(enc.entries, en)
	at := int32(len(enc.entries) - 1)
	if b.first < 0 {
		b.first = at
	} else {
		enc.entries[b.last].next = at
	}
	b.last = at
	if b.index == nil && b.nkeys > linearKeys {
		b.index = make(map[string]uint32, 2*b.nkeys)
		i := uint32(0)
		for e := b.first; e >= 0; e = enc.entries[e].next {
			b.index[string(enc.arena[enc.entries[e].key:enc.entries[e].end])] = i
			i++
		}
	} else if b.index != nil {
		b.index[string(key)] = x
	}
	return x, nil
}

func sameTags(a, b telemetry.Tags) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func (enc *encoder) messages(points []telemetry.Point) ([]bus.Message, error) {
	if enc.byDev == nil {
		enc.byDev = map[string]int32{}
	}
	clear(enc.byDev)
	enc.devs, enc.arena, enc.entries = enc.devs[:0], enc.arena[:0], enc.entries[:0]
	if cap(enc.entries) == 0 { // a fresh encoder: guess, rather than grow from nothing
		enc.entries = make([]keyEntry, 0, len(points)/2+1)
		enc.arena = make([]byte, 0, 16*len(points))
	}
	if cap(enc.recs) < len(points) {
		enc.recs = make([]rec, len(points))
	}
	enc.recs = enc.recs[:len(points)]
	enc.lastDev, enc.lastTags = -1, nil
	for i, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			enc.recs[i].dev = -1
			continue
		}
		if enc.lastDev < 0 || p.Series.Measurement != enc.lastM || !sameTags(p.Series.Tags, enc.lastTags) {
			d := DeviceOf(p.Series)
			x, ok := enc.byDev[d]
			if !ok {
				x = int32(len(enc.devs))
				enc.byDev[d] = x
				enc.devs = append(enc.devs, devBuf{id: d, first: -1, last: -1})
			}
			enc.lastDev, enc.lastM, enc.lastTags = x, p.Series.Measurement, p.Series.Tags
			// The key of the series with an empty field ends in a space.
			enc.prefix = telemetry.Series{Measurement: p.Series.Measurement, Tags: p.Series.Tags}.AppendKey(enc.prefix[:0])
			enc.prefix = enc.prefix[:len(enc.prefix)-1]
		}
		b := &enc.devs[enc.lastDev]
		// A key with an empty measurement and no tags is " " + the field.
		enc.key = telemetry.Series{Field: p.Series.Field}.AppendKey(append(enc.key[:0], enc.prefix...))
		idx, err := enc.lookup(b, enc.key)
		if err != nil {
			return nil, err
		}
		delta := p.Time - b.lastT
		b.lastT = p.Time
		b.n++
		b.size += uvarintLen(uint64(idx)) + uvarintLen(uint64(delta<<1)^uint64(delta>>63)) + 8
		enc.recs[i] = rec{dev: enc.lastDev, idx: idx, delta: delta}
	}
	total := 0
	for i := range enc.devs {
		b := &enc.devs[i]
		b.size += len(wireMagic) + 1 + uvarintLen(uint64(b.nkeys)) + uvarintLen(b.n)
		b.off = total
		total += b.size
	}
	out := make([]byte, total)
	msgs := make([]bus.Message, len(enc.devs))
	for i := range enc.devs {
		b := &enc.devs[i]
		msgs[i] = bus.Message{Key: b.id, Payload: out[b.off : b.off+b.size : b.off+b.size]}
		w := b.off + copy(out[b.off:], wireMagic)
		out[w] = wireVersion
		w++
		w += binary.PutUvarint(out[w:], uint64(b.nkeys))
		for e := b.first; e >= 0; e = enc.entries[e].next {
			w += copy(out[w:], enc.arena[enc.entries[e].start:enc.entries[e].end])
		}
		w += binary.PutUvarint(out[w:], b.n)
		b.off = w
	}
	for i, p := range points {
		r := enc.recs[i]
		if r.dev < 0 {
			continue
		}
		b := &enc.devs[r.dev]
		w := b.off
		w += binary.PutUvarint(out[w:], uint64(r.idx))
		w += binary.PutVarint(out[w:], r.delta)
		binary.LittleEndian.PutUint64(out[w:], math.Float64bits(p.Value))
		b.off = w + 8
	}
	enc.lastTags = nil // hold no caller memory while pooled
	clear(enc.devs)    // nor device IDs and maps
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
	pts, keys, err := dec.decode(msg)
	if err != nil {
		return nil, err
	}
	parsed := make(map[string]telemetry.Series, len(dec.keys))
	for i, k := range dec.keys {
		s, err := telemetry.ParseSeriesKey(k)
		if err != nil {
			return nil, fmt.Errorf("decode telemetry message %s (key %q): %w: series %d: %w", msg.ID, msg.Key, ErrBadMessage, i, err)
		}
		parsed[k] = s
	}
	for i := range pts {
		pts[i].Series = parsed[keys[i]]
	}
	return pts, nil
}

// decoder decodes telemetry messages; its scratch space is reused.
type decoder struct {
	keys []string // the dictionary of the last message
}

// decode returns the points of msg, without their Series, and the key of
// each point's series (not checked: see DecodeMessage).
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
	dec.keys = dec.keys[:0]
	for i := range nkeys {
		n, err := uvarint("series key length")
		if err != nil {
			return nil, nil, err
		}
		if n > uint64(len(b)) {
			return nil, nil, bad("series %d: key of %d bytes, %d left", i, n, len(b))
		}
		dec.keys = append(dec.keys, string(b[:n]))
		b = b[n:]
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
		pts = append(pts, telemetry.Point{Time: t, Value: v})
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

	encoders sync.Pool // of *encoder
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
	enc, _ := w.encoders.Get().(*encoder)
	if enc == nil {
		enc = new(encoder)
	}
	msgs, err := enc.messages(written)
	w.encoders.Put(enc)
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
