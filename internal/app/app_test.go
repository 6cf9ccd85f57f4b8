package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
)

const adminSecret = "vgl_test-bootstrap-secret-0123456789"

// server is one running Vigil process (in-process) over a data directory.
type server struct {
	url  string
	stop func()
}

func start(t *testing.T, dataDir string, opts ...func(*config.Config)) *server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(t.Context())
	a, err := app.Open(ctx, cfg, app.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := a.Bootstrap(ctx, adminSecret, io.Discard); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	stopped := false
	s := &server{url: "http://" + ln.Addr().String(), stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}}
	t.Cleanup(s.stop)
	return s
}

type sample struct {
	Time  string  `json:"time"`
	Value float64 `json:"value"`
}

func query(t *testing.T, base string, q url.Values) map[string][]sample {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/query?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Token "+adminSecret)
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

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeWriteQueryRestart runs Vigil on its embedded defaults (plus the
// embedded MQTT broker), writes with the official InfluxDB 2.x client and
// as an MQTT device, reads the exact values back, restarts on the same data
// directory and reads them again.
func TestServeWriteQueryRestart(t *testing.T) {
	dir := t.TempDir()
	mqttAddr := freeAddr(t)
	withMQTT := func(c *config.Config) { c.MQTTListen = mqttAddr }
	s := start(t, dir, withMQTT)

	if fi, err := os.Stat(filepath.Join(dir, "admin-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token file: %v, %v; want mode 0600", fi, err)
	}

	c := influxdb2.NewClientWithOptions(s.url, adminSecret, influxdb2.DefaultOptions().SetPrecision(time.Millisecond))
	defer c.Close()
	w := c.WriteAPIBlocking("acme", "iot")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 60 {
		p := influxdb2.NewPoint("env", map[string]string{"device": "pump-7", "site": "north"},
			map[string]any{"temp": 20 + float64(i)/4, "on": i%2 == 0}, t0.Add(time.Duration(i)*time.Second))
		if err := w.WritePoint(t.Context(), p); err != nil {
			t.Fatalf("WritePoint %d: %v", i, err)
		}
	}
	want := map[string][]sample{}
	for i := range 60 {
		ts := t0.Add(time.Duration(i) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
		want["env,device=pump-7,site=north temp"] = append(want["env,device=pump-7,site=north temp"], sample{ts, 20 + float64(i)/4})
		on := 0.0
		if i%2 == 0 {
			on = 1
		}
		want["env,device=pump-7,site=north on"] = append(want["env,device=pump-7,site=north on"], sample{ts, on})
	}

	// The same device over MQTT, QoS 1: PUBACK means stored.
	mc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("pump-7").
		SetUsername("pump-7").SetPassword(adminSecret).SetAutoReconnect(false))
	if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	for i := range 10 {
		ts := t0.Add(time.Duration(60+i) * time.Second)
		line := fmt.Sprintf("env,site=north temp=%d.5 %d", 30+i, ts.UnixNano())
		if tok := mc.Publish("vigil/pump-7/telemetry", 1, false, line); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("mqtt publish %d: %v", i, tok.Error())
		}
		want["env,device=pump-7,site=north temp"] = append(want["env,device=pump-7,site=north temp"],
			sample{ts.UTC().Format("2006-01-02T15:04:05.000Z"), float64(30+i) + 0.5})
	}
	mc.Disconnect(100)

	q := url.Values{"measurement": {"env"}, "device": {"pump-7"}, "start": {t0.Add(-time.Minute).Format(time.RFC3339)}}
	if diff := cmp.Diff(want, query(t, s.url, q)); diff != "" {
		t.Fatalf("query before restart (-want +got):\n%s", diff)
	}

	s.stop()
	s = start(t, dir, withMQTT)
	if diff := cmp.Diff(want, query(t, s.url, q)); diff != "" {
		t.Fatalf("query after restart (-want +got):\n%s", diff)
	}
}

// TestUnknownSchemeListsValidOnes checks the error a user gets for a typo in
// a store URL.
func TestUnknownSchemeListsValidOnes(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TSDB = "timescale://localhost"
	_, err := app.Open(t.Context(), cfg, app.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown scheme "timescale"`) || !strings.Contains(err.Error(), "valid: embedded") {
		t.Fatalf("Open with tsdb=%s: got %v, want an error naming the scheme and the valid ones", cfg.TSDB, err)
	}
}

// TestBootstrapOnce checks the first admin token is created once and kept
// across restarts.
func TestBootstrapOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	for i := range 2 {
		a, err := app.Open(t.Context(), cfg, app.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := a.Bootstrap(t.Context(), "", &out); err != nil {
			t.Fatal(err)
		}
		printed := strings.Contains(out.String(), "vgl_")
		if printed != (i == 0) {
			t.Errorf("start %d: token printed = %v, want %v; output %q", i, printed, i == 0, out.String())
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil || !strings.HasPrefix(string(b), "vgl_") {
		t.Fatalf("admin-token: %q, %v", b, err)
	}
}

// TestSecondProcessGetsLockError opens the same data directory twice: the
// second open fails with an error naming the locked directory, and closes
// what it had opened.
func TestSecondProcessGetsLockError(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := app.Open(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := app.Open(t.Context(), cfg, app.Options{})
	if err == nil {
		b.Close()
		t.Fatal("second Open of a locked data directory succeeded")
	}
	if !strings.Contains(err.Error(), cfg.DataDir) {
		t.Errorf("error %q does not name the data directory %s", err, cfg.DataDir)
	}
}

// TestRedisCache runs the app with its cache on the real Redis named by
// VIGIL_TEST_REDIS: the store opens and its health check passes.
func TestRedisCache(t *testing.T) {
	u := os.Getenv("VIGIL_TEST_REDIS")
	if u == "" {
		t.Skip("VIGIL_TEST_REDIS not set (e.g. redis://127.0.0.1:6379/0); skipping the app test against a real Redis")
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Cache = u
	a, err := app.Open(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatalf("Open with cache %s: %v", u, err)
	}
	defer a.Close()
	rep := a.Health(t.Context())
	for _, c := range rep.Checks {
		if c.Name == "cache" && c.Status != "up" {
			t.Fatalf("cache health on Redis: %+v", c)
		}
	}
	if !rep.Ready() {
		t.Fatalf("not ready: %+v", rep)
	}
}
