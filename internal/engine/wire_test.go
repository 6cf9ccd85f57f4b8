package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/bus/membus"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

func TestMessagesRoundTrip(t *testing.T) {
	a := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d 1,x"}, {Key: "site", Value: "n"}}, "temp")
	b := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d2"}}, "hum")
	c := telemetry.NewSeries("env", nil, "untagged")
	pts := []telemetry.Point{
		{Series: a, Time: 1000, Value: 1.5}, {Series: b, Time: 1000, Value: -2},
		{Series: a, Time: 2000, Value: math.NaN()}, {Series: c, Time: 3000, Value: 1e-300},
		{Series: a, Time: 3000, Value: 7},
	}
	msgs, err := engine.Messages(pts)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var got []telemetry.Point
	for _, m := range msgs {
		keys = append(keys, m.Key)
		ps, err := engine.DecodeMessage(m)
		if err != nil {
			t.Fatalf("DecodeMessage(%q): %v", m.Payload, err)
		}
		got = append(got, ps...)
	}
	if d := cmp.Diff([]string{"d 1,x", "d2", "untagged:env"}, keys); d != "" {
		t.Errorf("message keys (-want +got):\n%s", d)
	}
	want := []telemetry.Point{pts[0], pts[4], pts[1], pts[3]} // grouped by device, NaN left out
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("decoded points (-want +got):\n%s", d)
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	s := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}}, "temp")
	msgs, err := engine.Messages([]telemetry.Point{{Series: s, Time: 1000, Value: 1}, {Series: s, Time: 900, Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	good := msgs[0].Payload
	with := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name    string
		payload []byte
		want    string // in the error text
	}{
		{"empty", nil, "no \"VGT\" header"},
		{"line protocol", []byte("env,device=d1 temp=1 1000\n"), "no \"VGT\" header"},
		{"unknown version", with(func(b []byte) []byte { b[3] = 2; return b }), "encoding version 2, this engine reads version 1"},
		{"truncated", good[:len(good)-1], "truncated value"},
		{"trailing bytes", append(append([]byte(nil), good...), 0), "1 bytes after the last point"},
		{"huge series count", []byte("VGT\x01\xff\xff\xff\x0f"), "series in 0 bytes"},
		{"bad series key", []byte("VGT\x01\x01\x03abc\x00"), "series 0"},
		{"series index out of range", with(func(b []byte) []byte {
			// Two points of 11 bytes each (index, 2-byte time delta,
			// value) end the payload: set the first one's index.
			b[len(b)-22] = 5
			return b
		}), "series 5 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.DecodeMessage(bus.Message{Payload: tt.payload})
			if !errors.Is(err, engine.ErrBadMessage) {
				t.Fatalf("DecodeMessage(%q) = %v, want ErrBadMessage", tt.payload, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeMessage(%q) = %q, want it to mention %q", tt.payload, err, tt.want)
			}
		})
	}
}

// rejecting writes everything but the points at the listed indexes.
type rejecting struct{ reject map[int]bool }

func (r rejecting) WritePoints(_ context.Context, pts []telemetry.Point) error {
	pe := &timeseries.PartialWriteError{}
	for i, p := range pts {
		if r.reject[i] {
			pe.Failed = append(pe.Failed, timeseries.PointError{Index: i, Point: p, Err: timeseries.ErrOutOfWindow})
		} else {
			pe.Written++
		}
	}
	if len(pe.Failed) == 0 {
		return nil
	}
	return pe
}

func TestPublishingWriter(t *testing.T) {
	s := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}}, "temp")
	pts := []telemetry.Point{{Series: s, Time: 1, Value: 1}, {Series: s, Time: 2, Value: 2}, {Series: s, Time: 3, Value: 3}}
	b := membus.New(membus.Options{})
	defer b.Close()
	if err := b.Initialize(t.Context(), engine.TopicTelemetry, "g"); err != nil {
		t.Fatal(err)
	}
	w := &engine.PublishingWriter{W: rejecting{reject: map[int]bool{1: true}}, Pub: b}
	err := w.WritePoints(t.Context(), pts)
	if !errors.Is(err, timeseries.ErrOutOfWindow) {
		t.Fatalf("WritePoints = %v, want the partial write error", err)
	}
	var got []telemetry.Point
	ctx, cancel := context.WithCancel(t.Context())
	_ = b.Subscribe(ctx, engine.TopicTelemetry, "g", func(_ context.Context, m bus.Message) error {
		ps, err := engine.DecodeMessage(m)
		if err != nil {
			return err
		}
		got = append(got, ps...)
		cancel()
		return nil
	})
	if d := cmp.Diff([]telemetry.Point{pts[0], pts[2]}, got); d != "" {
		t.Errorf("published points (-want +got):\n%s", d)
	}
	b.Close()
	if err := w.WritePoints(t.Context(), pts[:1]); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("WritePoints on a closed bus = %v, want ErrClosed", err)
	}
}

// FuzzDecodeMessage: any payload decodes or fails cleanly; what decodes
// re-encodes (Messages) to messages that decode to the same points.
func FuzzDecodeMessage(f *testing.F) {
	a := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}}, "temp")
	b := telemetry.NewSeries("env", telemetry.Tags{{Key: "device", Value: "d1"}, {Key: "x", Value: "a b"}}, "hum")
	msgs, err := engine.Messages([]telemetry.Point{{Series: a, Time: 1000, Value: 1.5}, {Series: b, Time: 1000, Value: -3}, {Series: a, Time: -5, Value: 1e300}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msgs[0].Payload)
	f.Add([]byte("VGT\x01\x00\x00"))
	f.Add([]byte("VGT\x02"))
	f.Add([]byte("env,device=d1 temp=1.5 1000\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, payload []byte) {
		pts, err := engine.DecodeMessage(bus.Message{Payload: payload})
		if err != nil {
			if !errors.Is(err, engine.ErrBadMessage) {
				t.Fatalf("DecodeMessage(%q) = %v, want ErrBadMessage", payload, err)
			}
			return
		}
		var want []telemetry.Point
		for _, p := range pts {
			if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
				want = append(want, p)
			}
		}
		msgs, err := engine.Messages(want)
		if err != nil {
			t.Fatalf("Messages of decoded points: %v", err)
		}
		got := map[string][]telemetry.Point{}
		for _, m := range msgs {
			ps, err := engine.DecodeMessage(m)
			if err != nil {
				t.Fatalf("re-encoded message %q does not decode: %v", m.Payload, err)
			}
			got[m.Key] = ps
		}
		byDev := map[string][]telemetry.Point{}
		for _, p := range want {
			byDev[engine.DeviceOf(p.Series)] = append(byDev[engine.DeviceOf(p.Series)], p)
		}
		if d := cmp.Diff(byDev, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("round trip of %q (-want +got):\n%s", payload, d)
		}
	})
}

func BenchmarkMessages(b *testing.B) {
	pts := benchBatch(500, 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.Messages(pts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkDecodeMessage(b *testing.B) {
	msgs, err := engine.Messages(benchBatch(1, 1000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.DecodeMessage(msgs[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "points/s")
}

// benchBatch returns one reading of each of fields series of each of
// devices devices.
func benchBatch(devices, fields int) []telemetry.Point {
	var pts []telemetry.Point
	for d := range devices {
		tags := telemetry.Tags{{Key: "device", Value: fmt.Sprintf("dev-%05d", d)}, {Key: "site", Value: "north"}}
		for f := range fields {
			// The fields of one line share its tags, as parsed by ingest.
			s := telemetry.Series{Measurement: "bench", Tags: tags, Field: fmt.Sprintf("f%d", f)}
			pts = append(pts, telemetry.Point{Series: s, Time: 1_700_000_000_000 + int64(f), Value: float64(d*f) + 0.5})
		}
	}
	return pts
}

func TestMessagesManySeries(t *testing.T) {
	// More series per device than the encoder scans linearly: the
	// dictionary switches to a map.
	var pts []telemetry.Point
	tags := telemetry.Tags{{Key: "device", Value: "d1"}}
	for round := range 3 {
		for f := range 50 {
			s := telemetry.NewSeries("m", tags, fmt.Sprintf("f%02d", f))
			pts = append(pts, telemetry.Point{Series: s, Time: int64(round*1000 - f), Value: float64(round*f) - 0.25})
		}
	}
	msgs, err := engine.Messages(pts)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got, err := engine.DecodeMessage(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(pts, got); d != "" {
		t.Errorf("decoded points (-want +got):\n%s", d)
	}
}

// BenchmarkLineProtocol is the line protocol encoding the binary one
// replaced, on the same batch as BenchmarkMessages and
// BenchmarkDecodeMessage, for comparison.
func BenchmarkLineProtocol(b *testing.B) {
	b.Run("op=encode", func(b *testing.B) {
		pts := benchBatch(500, 10)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := telemetry.AppendPoints(nil, pts, telemetry.Millisecond); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
	})
	b.Run("op=decode", func(b *testing.B) {
		body, err := telemetry.AppendPoints(nil, benchBatch(1, 1000), telemetry.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		p := telemetry.NewLineParser(telemetry.LineOptions{Precision: telemetry.Millisecond})
		b.ReportAllocs()
		for b.Loop() {
			if res := p.Parse(nil, body); res.Err() != nil {
				b.Fatal(res.Err())
			}
			if false {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "points/s")
	})
}

// TestHandleChecksSeries: Handle scores the readings of a message's device
// and drops (logs) those of a series of another device or with a malformed
// key.
func TestHandleChecksSeries(t *testing.T) {
	e := newEnv(t)
	en := e.engine(t, nil)
	d1 := signal{"d1", "temp", 3, nil}.points(1)
	msgs, err := engine.Messages(d1)
	if err != nil {
		t.Fatal(err)
	}
	good := msgs[0]
	wrong := good
	wrong.Key = "d2" // d1's series under d2
	badKey := bus.Message{Key: "d1", Payload: []byte("VGT\x01\x01\x03abc\x01\x00\x00" + "\x00\x00\x00\x00\x00\x00\xf0\x3f")}
	for _, m := range []bus.Message{wrong, badKey, good} {
		if err := en.Handle(t.Context(), m); err != nil {
			t.Fatalf("Handle(%q): %v", m.Payload, err)
		}
	}
	if st := en.Stats(); st.Scored != 3 {
		t.Errorf("scored %d readings, want 3 (only the good message's)", st.Scored)
	}
}
