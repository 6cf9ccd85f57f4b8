package engine

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// TestWriteEventsAtomic: an event and its announcement are one
// transaction; when any write of the batch fails, none is stored.
func TestWriteEventsAtomic(t *testing.T) {
	db, err := sqlitedb.Open(t.Context(), t.TempDir()+"/app.db", sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now().UTC().Truncate(time.Millisecond)
	good := event{
		anomaly: appdb.Anomaly{ID: eventID("s", 1), Device: "d1", SeriesKey: "s", Start: start, PeakScore: 0.9, Severity: appdb.SeverityCritical},
		actions: []announce{{ActionOpen, detect.SeverityCritical}},
	}
	bad := good
	bad.anomaly.ID = eventID("s", 2)
	bad.anomaly.PeakScore = math.NaN() // rejected by the store after good was written

	count := func() (anomalies, outbox int) {
		as, _, err := db.Anomalies().Find(t.Context(), appdb.AnomalyFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ms, _, err := db.Outbox().Find(t.Context(), appdb.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(as), len(ms)
	}
	err = writeEvents(t.Context(), db, []event{good, bad})
	if !errors.Is(err, appdb.ErrInvalid) {
		t.Fatalf("writeEvents(good, bad) = %v, want ErrInvalid", err)
	}
	if a, o := count(); a != 0 || o != 0 {
		t.Fatalf("after a failed transaction: %d anomalies, %d outbox messages; want 0, 0", a, o)
	}
	for range 2 { // the second write is a redelivery
		if err := writeEvents(t.Context(), db, []event{good}); err != nil {
			t.Fatalf("writeEvents(good): %v", err)
		}
		if a, o := count(); a != 1 || o != 1 {
			t.Fatalf("after writing one event: %d anomalies, %d outbox messages; want 1, 1", a, o)
		}
	}
}

func TestTrackerHysteresis(t *testing.T) {
	alarm := detect.Result{Score: 0.9, Anomaly: true, Severity: detect.SeverityWarning, Detectors: []string{"spike"}}
	worse := detect.Result{Score: 0.95, Anomaly: true, Severity: detect.SeverityCritical, Detectors: []string{"level"}}
	warmish := detect.Result{Score: 0.45} // resting just under the threshold: still hot
	clean := detect.Result{Score: 0.1}
	seq := func(rs ...detect.Result) []detect.Result { return rs }
	rep := func(r detect.Result, n int) []detect.Result {
		out := make([]detect.Result, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	tests := []struct {
		name  string
		in    []detect.Result
		want  []string
		start []int // readings at which an event opened
	}{
		{"clean", rep(clean, 20), nil, nil},
		{"one_alarm", append(seq(clean, alarm), rep(clean, 3)...), []string{"open:warning", "close:warning"}, []int{1}},
		{"not_yet_closed", append(seq(alarm), rep(clean, 2)...), []string{"open:warning"}, []int{0}},
		{"extended_by_warm_scores", append(append(seq(alarm), warmish, clean, clean, warmish), rep(clean, 3)...), []string{"open:warning", "close:warning"}, []int{0}},
		{"escalation", append(seq(alarm, warmish, worse), rep(clean, 3)...), []string{"open:warning", "escalate:critical", "close:critical"}, []int{0}},
		{"two_events", append(append(append(seq(alarm), rep(clean, 3)...), alarm), rep(clean, 3)...), []string{"open:warning", "close:warning", "open:warning", "close:warning"}, []int{0, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr tracker
			var got []string
			var starts []int
			for i, r := range tc.in {
				st, err := tr.update("k", int64(i), r, 0.4, 3, func() (bool, error) { return false, nil })
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range st.actions {
					got = append(got, a.action+":"+a.severity.String())
					if a.action == ActionOpen {
						starts = append(starts, i)
					}
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("actions (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.start, starts); d != "" {
				t.Errorf("event starts (-want +got):\n%s", d)
			}
		})
	}
}

func TestCheckpointKeyRoundTrip(t *testing.T) {
	for _, c := range []struct{ device, series string }{
		{"d1", "env,device=d1 temp"}, {"a:b:c", ""}, {"", "x y"}, {"dev:7:x", "m,device=dev:7:x f"},
	} {
		dev, ser, err := parseCheckpointKey(devicePrefix(c.device) + c.series)
		if err != nil || dev != c.device || ser != c.series {
			t.Errorf("parse(key(%q, %q)) = %q, %q, %v", c.device, c.series, dev, ser, err)
		}
	}
	for _, bad := range []string{"x", "det:", "det:5:ab:", "det:-1::"} {
		if _, _, err := parseCheckpointKey(bad); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("parse(%q) = %v, want ErrBadCheckpoint", bad, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	meta := stateMeta{Tracker: tracker{Open: true, ID: "x", Start: 5, Peak: 0.7, Detectors: []string{"spike"}}, Sensors: []string{"a", "b"}}
	b, err := encodeState([]byte{1, 2, 3}, meta)
	if err != nil {
		t.Fatal(err)
	}
	det, got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(meta, got, cmp.AllowUnexported(stateMeta{}, tracker{})); d != "" || string(det) != "\x01\x02\x03" {
		t.Errorf("round trip: det %v, meta diff %s", det, d)
	}
	for _, bad := range [][]byte{nil, []byte("VGE1"), []byte("VGE1\xff\x00\x00\x00{}"), []byte("XXXX\x00\x00\x00\x00{}")} {
		if _, _, err := decodeState(bad); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("decode(%q) = %v, want ErrBadCheckpoint", bad, err)
		}
	}
}

// FuzzCheckpoint: reading any stored key or state never panics, and a
// key made by devicePrefix always parses back.
func FuzzCheckpoint(f *testing.F) {
	st, _ := encodeState([]byte{1, 2}, stateMeta{Sensors: []string{"a"}})
	f.Add("det:2:d1:env temp", st)
	f.Add("det:0::", []byte("VGE1\x00\x00\x00\x00{}"))
	f.Add("det:99:x", []byte("VGE1\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, key string, state []byte) {
		_, _, _ = parseCheckpointKey(key)
		_, _, _ = decodeState(state)
		dev, ser, err := parseCheckpointKey(devicePrefix(key) + key)
		if err != nil || dev != key || ser != key {
			t.Fatalf("parse(prefix(%q)+%q) = %q, %q, %v", key, key, dev, ser, err)
		}
	})
}

// BenchmarkDecoder decodes with a reused decoder, as Handle does (its
// series cache warm), the batch of BenchmarkDecodeMessage.
func BenchmarkDecoder(b *testing.B) {
	var pts []telemetry.Point
	tags := telemetry.Tags{{Key: "device", Value: "dev-00000"}, {Key: "site", Value: "north"}}
	for f := range 1000 {
		s := telemetry.Series{Measurement: "bench", Tags: tags, Field: fmt.Sprintf("f%d", f)}
		pts = append(pts, telemetry.Point{Series: s, Time: 1_700_000_000_000 + int64(f), Value: float64(f) + 0.5})
	}
	msgs, err := Messages(pts)
	if err != nil {
		b.Fatal(err)
	}
	var dec decoder
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := dec.decode(msgs[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
}

// TestEncoderReuse: a reused encoder (as PublishingWriter pools them)
// encodes each batch as a fresh one does.
func TestEncoderReuse(t *testing.T) {
	a := telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d1"}}, "x")
	b := telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d2"}}, "y")
	batches := [][]telemetry.Point{
		{{Series: a, Time: 5, Value: 1}, {Series: b, Time: 5, Value: 2}, {Series: a, Time: 6, Value: math.NaN()}},
		{{Series: b, Time: 7, Value: 3}},
		{{Series: a, Time: 8, Value: 4}, {Series: a, Time: 9, Value: 5}},
	}
	var enc encoder
	for i, pts := range batches {
		got, err := enc.messages(pts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Messages(pts)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("batch %d: reused encoder (-fresh +reused):\n%s", i, d)
		}
	}
}

// BenchmarkEncoder encodes with a reused encoder, as PublishingWriter
// does, the batch of BenchmarkMessages.
func BenchmarkEncoder(b *testing.B) {
	var pts []telemetry.Point
	for d := range 500 {
		tags := telemetry.Tags{{Key: "device", Value: fmt.Sprintf("dev-%05d", d)}, {Key: "site", Value: "north"}}
		for f := range 10 {
			s := telemetry.Series{Measurement: "bench", Tags: tags, Field: fmt.Sprintf("f%d", f)}
			pts = append(pts, telemetry.Point{Series: s, Time: 1_700_000_000_000 + int64(f), Value: float64(d*f) + 0.5})
		}
	}
	var enc encoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.messages(pts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
}
