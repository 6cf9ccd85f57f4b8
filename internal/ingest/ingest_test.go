package ingest_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func openStore(t *testing.T) *embedts.Store {
	t.Helper()
	s, err := embedts.Open(t.TempDir(), embedts.Options{Now: clock})
	if err != nil {
		t.Fatalf("open embedts: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name, encoding string
		body           []byte
		max            int64
		want           string
		wantErr        error
	}{
		{"identity", "", []byte("abc"), 3, "abc", nil},
		{"identity named", "identity", []byte("abc"), 10, "abc", nil},
		{"identity too large", "", []byte("abcd"), 3, "", ingest.ErrBodyTooLarge},
		{"no limit", "", []byte("abcd"), -1, "abcd", nil},
		{"gzip", "gzip", gzipped("hello"), 5, "hello", nil},
		{"gzip upper case", "GZIP", gzipped("hello"), 5, "hello", nil},
		{"gzip too large decompressed", "gzip", gzipped(strings.Repeat("a", 100)), 99, "", ingest.ErrBodyTooLarge},
		{"bad gzip", "gzip", []byte("plain"), 100, "", ingest.ErrUnsupportedEncoding},
		{"truncated gzip", "gzip", gzipped("hello world")[:12], 100, "", ingest.ErrUnsupportedEncoding},
		{"unknown encoding", "br", []byte("x"), 100, "", ingest.ErrUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			got, err := ingest.ReadBody(bytes.NewReader(tt.body), tt.encoding, tt.max, &buf)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ReadBody: got error %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("ReadBody: got %q, want %q", got, tt.want)
			}
			if errors.Is(err, ingest.ErrBodyTooLarge) && !strings.Contains(err.Error(), fmt.Sprintf("MaxBodyBytes=%d", tt.max)) {
				t.Errorf("error %q does not name the limit", err)
			}
		})
	}
}

func FuzzReadBody(f *testing.F) {
	f.Add([]byte("m,device=d a=1 1\n"), false, int64(100))
	f.Add(gzipped("m a=1"), true, int64(3))
	f.Fuzz(func(t *testing.T, body []byte, gz bool, max int64) {
		enc := ""
		if gz {
			enc = "gzip"
		}
		var buf bytes.Buffer
		got, err := ingest.ReadBody(bytes.NewReader(body), enc, max, &buf)
		if err != nil {
			if !errors.Is(err, ingest.ErrBodyTooLarge) && !errors.Is(err, ingest.ErrUnsupportedEncoding) {
				t.Fatalf("ReadBody: error %v of no known kind", err)
			}
			return
		}
		if max >= 0 && int64(len(got)) > max {
			t.Fatalf("ReadBody returned %d bytes over limit %d", len(got), max)
		}
		if !gz && !bytes.Equal(got, body) {
			t.Fatalf("identity body changed: got %q, want %q", got, body)
		}
	})
}

func TestSeriesLimitsAcrossRestart(t *testing.T) {
	store := openStore(t)
	ts := now.Add(-time.Minute).UnixMilli()
	pts := []telemetry.Point{
		{Series: telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d1"}}, "a"), Time: ts, Value: 1},
		{Series: telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d1"}}, "b"), Time: ts, Value: 1},
		{Series: telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d2"}}, "a"), Time: ts, Value: 1},
	}
	if err := store.WritePoints(t.Context(), pts); err != nil {
		t.Fatal(err)
	}
	// A new ingester (a restarted process) seeded from the store.
	in := ingest.New(store, ingest.Options{Now: clock, Limits: ingest.Limits{MaxSeries: 4, MaxSeriesPerDevice: 2}})
	if err := in.Seed(t.Context(), store, timeseries.Range{Start: 0, End: now.Add(time.Hour).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if got := in.SeriesCount(); got != 3 {
		t.Fatalf("SeriesCount after Seed = %d, want 3", got)
	}
	ts2 := fmt.Sprint(ts + 1)
	tests := []struct {
		lp       string
		wantErr  error
		wantRes  ingest.Result
		wantText string
	}{
		// Existing series are always accepted.
		{"m,device=d1 a=2,b=2 " + ts2, nil, ingest.Result{Lines: 1, Points: 2}, ""},
		// d1 is at its per-device limit.
		{"m,device=d1 c=2 " + ts2, ingest.ErrSeriesLimit, ingest.Result{Lines: 1, RejectedPoints: 1}, "MaxSeriesPerDevice=2"},
		// d3 may create one series; then the total limit (4) is reached.
		{"m,device=d3 a=1,b=1 " + ts2, ingest.ErrSeriesLimit, ingest.Result{Lines: 1, Points: 1, RejectedPoints: 1}, "MaxSeries=4"},
	}
	for _, tt := range tests {
		res, err := in.WriteLineProtocol(t.Context(), ingest.Request{Precision: telemetry.Millisecond}, []byte(tt.lp))
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Fatalf("write %q: got error %v, want %v", tt.lp, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("write %q: error %q does not name %s", tt.lp, err, tt.wantText)
		}
		if diff := cmp.Diff(tt.wantRes, res); diff != "" {
			t.Errorf("write %q: result (-want +got):\n%s", tt.lp, diff)
		}
	}
	var pe *ingest.PartialError
	_, err := in.WriteLineProtocol(t.Context(), ingest.Request{Precision: telemetry.Millisecond}, []byte("m,device=d4 a=1 "+ts2))
	if !errors.As(err, &pe) || pe.Result.Points != 0 {
		t.Errorf("write beyond MaxSeries: got %v, want a *PartialError with nothing written", err)
	}
}

func TestDevicePrefix(t *testing.T) {
	store := openStore(t)
	in := ingest.New(store, ingest.Options{Now: clock})
	ts := now.Add(-time.Minute).UnixMilli()
	tests := []struct {
		name, lp string
		wantErr  error
	}{
		{"inside", fmt.Sprintf("m,device=site1-a v=1 %d", ts), nil},
		{"outside", fmt.Sprintf("m,device=site1-a v=1 %d\nm,device=other v=1 %d", ts+1, ts+1), ingest.ErrForbiddenDevice},
		{"no device tag", fmt.Sprintf("m v=1 %d", ts+2), ingest.ErrForbiddenDevice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := in.WriteLineProtocol(t.Context(), ingest.Request{DevicePrefix: "site1-", Precision: telemetry.Millisecond}, []byte(tt.lp))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
		})
	}
	got, err := store.QueryRange(t.Context(), timeseries.Selector{}, timeseries.Range{Start: 0, End: now.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != 1 || got[0].Samples[0].Time != ts {
		t.Errorf("stored %+v; want only the point of the allowed write", got)
	}
}

// TestTimestampDefaults checks that lines without timestamp get the
// injected clock's time, with each precision.
func TestTimestampDefaults(t *testing.T) {
	store := openStore(t)
	in := ingest.New(store, ingest.Options{Now: clock})
	for _, p := range []telemetry.Precision{telemetry.Nanosecond, telemetry.Second, telemetry.Hour} {
		if _, err := in.WriteLineProtocol(t.Context(), ingest.Request{Precision: p}, []byte("m,device=d v=1")); err != nil {
			t.Fatalf("precision %v: %v", p, err)
		}
	}
	got, err := store.QueryRange(t.Context(), timeseries.Selector{}, timeseries.Range{Start: 0, End: now.Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != 1 || got[0].Samples[0].Time != now.UnixMilli() {
		t.Errorf("stored %+v; want one sample at %d", got, now.UnixMilli())
	}
}
