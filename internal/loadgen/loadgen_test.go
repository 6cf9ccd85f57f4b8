package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const secret = "vgl_loadgen-test-secret-0123456789"

// startVigil runs an in-process Vigil on a temporary directory and returns
// its URL and app.
func startVigil(t *testing.T) (string, *app.App) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, app.Options{})
	if err != nil {
		cancel()
		t.Fatalf("Open: %v", err)
	}
	if err := a.Bootstrap(ctx, secret, io.Discard); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wait := a.RunBackground(ctx, ln)
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), a
}

// TestRunAgainstVigil loads a real Vigil for a few batches: every request
// is acknowledged, the rates are positive and every point is stored.
func TestRunAgainstVigil(t *testing.T) {
	url, a := startVigil(t)
	cfg := Config{URL: url, Token: secret, Batch: 300, Fields: 4, Series: 20, Connections: 2, Batches: 6}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	if res.Requests != 6 || res.Errors != 0 || res.FirstError != "" {
		t.Fatalf("got %d requests ok, %d errors (%s), want 6 and 0", res.Requests, res.Errors, res.FirstError)
	}
	if res.Lines != 6*300 || res.Points != 6*300*4 || res.Bytes == 0 {
		t.Errorf("got %d lines, %d points, %d bytes; want 1800, 7200, > 0", res.Lines, res.Points, res.Bytes)
	}
	if res.PointsPerSec() <= 0 || res.LinesPerSec() <= 0 || res.BytesPerSec() <= 0 || res.P50 <= 0 || res.P50 > res.P90 || res.P90 > res.P99 || res.P99 > res.Max {
		t.Errorf("rates %v/%v/%v and latencies %v/%v/%v/%v: want positive rates and ordered percentiles",
			res.PointsPerSec(), res.LinesPerSec(), res.BytesPerSec(), res.P50, res.P90, res.P99, res.Max)
	}
	got, err := a.TS.QueryRange(t.Context(), timeseries.Selector{Measurement: "bench"}, timeseries.Range{Start: 0, End: time.Now().UnixMilli() + 1})
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, s := range got {
		stored += len(s.Samples)
	}
	if len(got) != 20*4 || int64(stored) != res.Points {
		t.Errorf("store holds %d series and %d points, want %d and %d", len(got), stored, 20*4, res.Points)
	}

	t.Run("duration", func(t *testing.T) {
		res, err := Run(t.Context(), Config{URL: url, Token: secret, Batch: 100, Fields: 2, Series: 10, Connections: 1, Duration: 200 * time.Millisecond, Start: time.Now().Add(-30 * time.Minute)})
		if err != nil || res.Requests == 0 || res.Errors != 0 {
			t.Errorf("200ms run: got %+v, %v; want some requests and no errors", res, err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		res, err := Run(t.Context(), Config{URL: url, Token: "vgl_wrong", Batch: 10, Series: 2, Batches: 3})
		if !errors.Is(err, ErrRefused) || res.Requests != 0 || res.Errors == 0 {
			t.Errorf("wrong token: got %+v, %v; want ErrRefused and no acknowledged request", res, err)
		}
	})
}

// TestBodies checks the generated bodies: valid line protocol, Fields points
// per line, and timestamps recent, unique and increasing per series across
// batches.
func TestBodies(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{URL: "http://localhost:1", Batch: 250, Fields: 3, Series: 40, Connections: 3, Now: func() time.Time { return now }}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	owner := map[string]int{}
	lines := 0
	for c := range cfg.Connections {
		g := newGenerator(&cfg, c)
		for range 7 {
			body, maxTS := g.body(nil)
			p := telemetry.NewLineParser(telemetry.LineOptions{Precision: telemetry.Millisecond})
			res := p.Parse(nil, body)
			if err := res.Err(); err != nil || res.Lines != cfg.Batch || len(res.Points) != cfg.Batch*cfg.Fields {
				t.Fatalf("connection %d: %d lines, %d points, err %v; want %d lines of %d fields", c, res.Lines, len(res.Points), err, cfg.Batch, cfg.Fields)
			}
			lines += res.Lines
			for _, pt := range res.Points {
				k := pt.Series.Key()
				if o, ok := owner[k]; ok && o != c {
					t.Fatalf("series %s written by connections %d and %d", k, o, c)
				}
				owner[k] = c
				if prev, ok := last[k]; ok && pt.Time <= prev {
					t.Fatalf("series %s: time %d after %d, want strictly increasing", k, pt.Time, prev)
				}
				if pt.Time < now.Add(-time.Hour).UnixMilli() || pt.Time > maxTS || maxTS > now.UnixMilli() {
					t.Fatalf("series %s: time %d outside [now-1h, batch max %d], max after now", k, pt.Time, maxTS)
				}
				last[k] = pt.Time
			}
		}
	}
	if len(owner) != cfg.Series*cfg.Fields {
		t.Errorf("%d series written, want %d", len(owner), cfg.Series*cfg.Fields)
	}
}

func TestConfigInvalid(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no scheme":                {URL: "localhost:8086"},
		"fewer series than conns":  {URL: "http://x", Series: 1, Connections: 2},
		"negative batches":         {URL: "http://x", Batches: -1},
		"step below a millisecond": {URL: "http://x", Step: time.Microsecond},
	} {
		if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func BenchmarkBody(b *testing.B) {
	cfg := Config{URL: "http://x"}
	if err := cfg.resolve(); err != nil {
		b.Fatal(err)
	}
	g := newGenerator(&cfg, 0)
	var body []byte
	b.ReportAllocs()
	for b.Loop() {
		body, _ = g.body(body[:0])
	}
	b.SetBytes(int64(len(body)))
}
