package engine_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

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
	if _, err := engine.DecodeMessage(bus.Message{Payload: []byte("not line protocol")}); err == nil {
		t.Errorf("DecodeMessage(garbage) = nil error")
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

// FuzzDecodeMessage: any payload decodes or fails cleanly; what Messages
// encodes decodes back.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte("env,device=d1 temp=1.5 1000\n"))
	f.Add([]byte("m f=1i\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, payload []byte) {
		pts, err := engine.DecodeMessage(bus.Message{Payload: payload})
		if err != nil {
			return
		}
		msgs, err := engine.Messages(pts)
		if err != nil {
			return // e.g. a value that line protocol cannot carry back
		}
		for _, m := range msgs {
			if _, err := engine.DecodeMessage(m); err != nil {
				t.Fatalf("re-encoded message %q does not decode: %v", m.Payload, err)
			}
		}
	})
}
