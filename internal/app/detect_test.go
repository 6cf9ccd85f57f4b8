package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/engine"
	"github.com/vigil-iot/vigil/internal/notify"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// webhookSink is the external receiver of anomaly notifications.
type webhookSink struct {
	mu  sync.Mutex
	got []engine.Notification
	bad int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	var n engine.Notification
	if !notify.Verify([]byte("hook-key"), body, r.Header.Get(notify.HeaderSignature)) || json.Unmarshal(body, &n) != nil ||
		r.Header.Get(notify.HeaderEventID) != n.ID {
		s.bad++
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.got = append(s.got, n)
}

func (s *webhookSink) notifications() ([]engine.Notification, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]engine.Notification(nil), s.got...), s.bad
}

// TestDetectEndToEnd runs Vigil, writes a simulated fleet of two devices
// through the HTTP write API (one with an injected spike), and waits for
// the anomaly event to be recorded and announced to the webhook and to an
// MQTT subscriber of the embedded broker; the clean device gets none.
func TestDetectEndToEnd(t *testing.T) {
	sink := &webhookSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()

	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.WebhookURL = hook.URL
	cfg.WebhookKey = "hook-key"
	cfg.MQTTListen = freeAddr(t)
	cfg.MQTTNotifyTopic = "vigil/anomalies/{device}"
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
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	// A dashboard subscribes to every device's anomalies with a read token.
	mqttMsgs := subscribeAnomalies(t, "http://"+ln.Addr().String(), cfg.MQTTListen)

	// Half an hour at night (UTC), within the store's out-of-order window:
	// the simulated load and daily cycle are quiet then, so the clean
	// device is the same kind of clean whenever the test runs.
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(3 * time.Hour)
	if start.After(time.Now().Add(-time.Hour)) {
		start = start.Add(-24 * time.Hour)
	}
	end := start.Add(30 * time.Minute)
	devs := simulate.NewDevices(1, 2, 2, time.Second)
	for i := range devs {
		devs[i].GapRate = 0
	}
	faultAt := start.Add(20 * time.Minute)
	fleet, err := simulate.NewFleet(simulate.Config{
		Seed: 1, Start: start, End: end, Devices: devs,
		Faults: []simulate.Fault{{Device: "dev-001", Sensors: []string{devs[0].Sensors[0].Name}, Kind: simulate.Spike, Start: faultAt, End: faultAt.Add(3 * time.Second), Magnitude: 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	snd := &simulate.Sender{URL: "http://" + ln.Addr().String(), Org: "acme", Bucket: "iot", Token: adminSecret, BatchSize: 500}
	n, err := snd.Send(t.Context(), fleet.Points())
	if err != nil {
		t.Fatalf("Send: %v (after %d points)", err, n)
	}

	// Read the application database beside the running app.
	db, err := sqlitedb.Open(t.Context(), filepath.Join(dir, "vigil.db"), sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	closed := false
	var events []appdb.Anomaly
	deadline := time.Now().Add(60 * time.Second)
	for !closed && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if events, _, err = db.Anomalies().Find(t.Context(), appdb.AnomalyFilter{Device: "dev-001"}); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			closed = closed || (!e.Ongoing() && !e.Start.Before(faultAt) && e.Start.Before(faultAt.Add(10*time.Second)))
		}
	}
	if !closed {
		t.Fatalf("no closed event of dev-001 at the spike %v within 60s; events: %+v", faultAt, events)
	}
	// Wait until the clean device is scored through its last reading (its
	// checkpoints are written every 10s), then check it has no event.
	deadline = time.Now().Add(60 * time.Second)
	for scored := false; !scored; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dev-002 not checkpointed through its last reading within 60s")
		}
		cps, _, err := db.Checkpoints().Find(t.Context(), appdb.CheckpointFilter{KeyPrefix: "det:7:dev-002:"})
		if err != nil {
			t.Fatal(err)
		}
		scored = len(cps) == 3 // two series and the device detector
		for _, cp := range cps {
			scored = scored && !cp.ScoredThrough.Before(end.Add(-5*time.Second))
		}
	}
	if clean, _, err := db.Anomalies().Find(t.Context(), appdb.AnomalyFilter{Device: "dev-002"}); err != nil || len(clean) != 0 {
		t.Errorf("clean device dev-002: events %+v, %v; want none", clean, err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got, bad := sink.notifications()
		if bad > 0 {
			t.Fatalf("webhook got %d unsigned or malformed requests", bad)
		}
		opened := false
		for _, nt := range got {
			opened = opened || (nt.Action == engine.ActionOpen && nt.Anomaly.Device == "dev-001")
		}
		if opened {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got no open notification for dev-001 within 30s: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for timeout := time.After(30 * time.Second); ; {
		select {
		case m := <-mqttMsgs:
			var nt engine.Notification
			if err := json.Unmarshal(m.Payload(), &nt); err != nil {
				t.Fatalf("mqtt notification on %s: %v", m.Topic(), err)
			}
			if nt.Anomaly.Device == "dev-002" {
				t.Fatalf("mqtt notification for the clean device: %+v", nt)
			}
			if nt.Action == engine.ActionOpen && nt.Anomaly.Device == "dev-001" {
				if m.Topic() != "vigil/anomalies/dev-001" {
					t.Fatalf("open notification of dev-001 on topic %q", m.Topic())
				}
				return
			}
		case <-timeout:
			t.Fatal("no open notification for dev-001 on MQTT within 30s")
		}
	}
}

// subscribeAnomalies creates a read token through the API of the Vigil at
// base and subscribes with it to every device's anomaly notifications on
// the embedded broker at mqttAddr.
func subscribeAnomalies(t *testing.T, base, mqttAddr string) <-chan paho.Message {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/api/v1/tokens",
		bytes.NewReader([]byte(`{"name":"dashboard","role":"read"}`)))
	req.Header.Set("Authorization", "Token "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated || tok.Secret == "" {
		t.Fatalf("create read token: status %d, %v", resp.StatusCode, err)
	}
	msgs := make(chan paho.Message, 100)
	mc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("dashboard").
		SetUsername("dashboard").SetPassword(tok.Secret).SetAutoReconnect(false))
	if ct := mc.Connect(); !ct.WaitTimeout(10*time.Second) || ct.Error() != nil {
		t.Fatalf("mqtt connect: %v", ct.Error())
	}
	t.Cleanup(func() { mc.Disconnect(100) })
	st := mc.Subscribe("vigil/anomalies/+", 1, func(_ paho.Client, m paho.Message) { msgs <- m })
	if !st.WaitTimeout(10*time.Second) || st.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", st.Error())
	}
	if sub, ok := st.(*paho.SubscribeToken); ok && sub.Result()["vigil/anomalies/+"] >= 0x80 {
		t.Fatal("mqtt subscribe to vigil/anomalies/+ refused for a read token")
	}
	return msgs
}
