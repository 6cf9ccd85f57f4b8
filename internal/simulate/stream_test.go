package simulate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/simulate"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const secret = "vgl_simulate-test-secret-0123456789"

// vigil is one in-process Vigil server on a temporary data directory.
type vigil struct {
	url, mqtt string
}

func startVigil(t *testing.T, withMQTT bool) *vigil {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	v := &vigil{}
	if withMQTT {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.MQTTListen = ln.Addr().String()
		ln.Close()
		v.mqtt = "tcp://" + cfg.MQTTListen
	}
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
	v.url = "http://" + ln.Addr().String()
	if withMQTT {
		// The broker listens once Run got going.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", cfg.MQTTListen)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mqtt broker not listening on %s: %v", cfg.MQTTListen, err)
			}
		}
	}
	return v
}

type sample struct {
	Time  string  `json:"time"`
	Value float64 `json:"value"`
}

// query returns the samples of one device by series key.
func (v *vigil) query(t *testing.T, device string, start, end time.Time) map[string][]sample {
	t.Helper()
	q := url.Values{"measurement": {simulate.DefaultMeasurement}, "device": {device},
		"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, v.url+"/api/v1/query?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Token "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("query %v: status %d: %s", q, resp.StatusCode, b)
	}
	var body struct {
		Series []struct {
			Key     string   `json:"key"`
			Samples []sample `json:"samples"`
		} `json:"series"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	got := map[string][]sample{}
	for _, s := range body.Series {
		got[s.Key] = s.Samples
	}
	return got
}

// expected returns the fleet's points of device in the query's shape.
func expected(fl *simulate.Fleet, device string) map[string][]sample {
	want := map[string][]sample{}
	for p := range fl.Points() {
		if p.Series.Device() == device {
			k := p.Series.Key()
			want[k] = append(want[k], sample{telemetry.FromMillis(p.Time).Format("2006-01-02T15:04:05.000Z"), p.Value})
		}
	}
	return want
}

func recentScenario(seed uint64, devices, sensors int, span time.Duration) simulate.Scenario {
	start := time.Now().Add(-span - time.Minute).Truncate(time.Second)
	return simulate.Scenario{Seed: seed, Devices: devices, Sensors: sensors, Interval: 10 * time.Second,
		Start: start, End: start.Add(span), Faults: 3}
}

// TestStreamHTTP sends a backfill with faults to a real Vigil over HTTP
// and reads every value back.
func TestStreamHTTP(t *testing.T) {
	v := startVigil(t, false)
	sc := recentScenario(7, 3, 3, 40*time.Minute)
	fl, err := sc.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(fl.Faults()); got != sc.Faults {
		t.Errorf("scenario with %d faults: fleet has %d", sc.Faults, got)
	}
	var calls int
	p, err := fl.Stream(t.Context(), &simulate.Sender{URL: v.url, Token: secret}, simulate.StreamOptions{
		BatchSize: 500, Progress: func(simulate.Progress) { calls++ },
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	total := int64(len(slices.Collect(fl.Points())))
	if p.Points != total || int64(calls) != p.Writes || p.Writes < total/500 {
		t.Errorf("progress %+v after %d calls, want %d points in at least %d writes", p, calls, total, total/500)
	}
	for _, dev := range []string{"dev-001", "dev-003"} {
		if diff := cmp.Diff(expected(fl, dev), v.query(t, dev, sc.Start, sc.End)); diff != "" {
			t.Errorf("device %s: stored data differs from the simulation (-want +got):\n%s", dev, diff)
		}
	}

	t.Run("bad token", func(t *testing.T) {
		_, err := fl.Stream(t.Context(), &simulate.Sender{URL: v.url, Token: "vgl_wrong"}, simulate.StreamOptions{})
		var se *simulate.StatusError
		if !errors.Is(err, simulate.ErrUnauthorized) || !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Errorf("wrong token: got %v, want a 401 StatusError matching ErrUnauthorized", err)
		}
	})
}

// TestStreamMQTT sends a backfill as MQTT devices to the embedded broker
// and reads every value back.
func TestStreamMQTT(t *testing.T) {
	v := startVigil(t, true)
	sc := recentScenario(8, 2, 3, 20*time.Minute)
	fl, err := sc.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	pub := &simulate.MQTTPublisher{Broker: v.mqtt, Token: secret, MaxLines: 20}
	defer pub.Close()
	if err := pub.Connect(t.Context(), []string{"dev-001", "dev-002"}); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := fl.Stream(t.Context(), pub, simulate.StreamOptions{BatchSize: 200}); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	for _, dev := range []string{"dev-001", "dev-002"} {
		if diff := cmp.Diff(expected(fl, dev), v.query(t, dev, sc.Start, sc.End)); diff != "" {
			t.Errorf("device %s: stored data differs from the simulation (-want +got):\n%s", dev, diff)
		}
	}

	t.Run("bad token", func(t *testing.T) {
		bad := &simulate.MQTTPublisher{Broker: v.mqtt, Token: "vgl_wrong"}
		defer bad.Close()
		if err := bad.Connect(t.Context(), []string{"dev-001"}); !errors.Is(err, simulate.ErrUnauthorized) {
			t.Errorf("wrong token: got %v, want ErrUnauthorized", err)
		}
	})
}

// TestStreamLive backfills a short history, then goes live until
// cancelled; everything acknowledged is stored.
func TestStreamLive(t *testing.T) {
	v := startVigil(t, false)
	start := time.Now().Add(-3 * time.Second)
	sc := simulate.Scenario{Seed: 3, Devices: 2, Sensors: 2, Interval: 100 * time.Millisecond, Start: start}
	fl, err := sc.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	liveWrites := 0
	p, err := fl.Stream(ctx, &simulate.Sender{URL: v.url, Token: secret}, simulate.StreamOptions{
		Live: true, FlushEvery: 100 * time.Millisecond,
		Progress: func(p simulate.Progress) {
			if p.Live {
				if liveWrites++; liveWrites == 3 {
					cancel()
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("live Stream stopped by cancel: got %v, want nil", err)
	}
	if !p.Live || liveWrites < 3 {
		t.Errorf("progress %+v after %d live writes, want live with 3", p, liveWrites)
	}
	stored := 0
	for _, dev := range []string{"dev-001", "dev-002"} {
		for _, s := range v.query(t, dev, start, time.Now().Add(time.Minute)) {
			stored += len(s)
		}
	}
	if int64(stored) != p.Points {
		t.Errorf("stored %d points, stream acknowledged %d", stored, p.Points)
	}
}

// TestScenarioDeterminism: the same scenario gives the same readings and
// labels; another seed does not.
func TestScenarioDeterminism(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := simulate.Scenario{Seed: 11, Devices: 4, Sensors: 3, Interval: 30 * time.Second, Start: start, End: start.Add(6 * time.Hour), Faults: 5}
	run := func(sc simulate.Scenario) ([]telemetry.Point, simulate.FaultLabels) {
		fl, err := sc.Fleet()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Collect(fl.Points()), sc.Labels(fl)
	}
	p1, l1 := run(sc)
	p2, l2 := run(sc)
	if len(l1.Faults) != 5 {
		t.Errorf("asked 5 faults, got %d", len(l1.Faults))
	}
	if diff := cmp.Diff(l1, l2); diff != "" {
		t.Errorf("same seed, different labels:\n%s", diff)
	}
	same := func(a, b []telemetry.Point) bool {
		return slices.EqualFunc(a, b, func(x, y telemetry.Point) bool {
			return x.Series.Key() == y.Series.Key() && x.Time == y.Time && x.Value == y.Value
		})
	}
	if !same(p1, p2) {
		t.Errorf("same seed, different points")
	}
	sc.Seed = 12
	p3, l3 := run(sc)
	if same(p1, p3) || cmp.Equal(l1.Faults, l3.Faults) {
		t.Errorf("seeds 11 and 12 gave the same points or faults")
	}

	for name, bad := range map[string]simulate.Scenario{
		"no devices":       {Devices: 0, Sensors: 1, Interval: time.Second, Start: start},
		"interval 1ms":     {Devices: 1, Sensors: 1, Interval: time.Millisecond, Start: start},
		"end before start": {Devices: 1, Sensors: 1, Interval: time.Second, Start: start, End: start.Add(-time.Hour)},
	} {
		if _, err := bad.Fleet(); !errors.Is(err, simulate.ErrInvalid) {
			t.Errorf("scenario %s: got %v, want ErrInvalid", name, err)
		}
	}
}
