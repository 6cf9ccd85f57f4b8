package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/mqttingest"
	"github.com/vigil-iot/vigil/internal/notify"
	"github.com/vigil-iot/vigil/internal/testutil/tcpproxy"
)

// brokers returns the MQTT brokers to test against, by name: an in-process
// mochi-mqtt broker always, and the Mosquitto of VIGIL_TEST_MQTT when set.
func brokers(t *testing.T) map[string]func(t *testing.T) string {
	t.Helper()
	bs := map[string]func(t *testing.T) string{"mochi": startMochi}
	if u := os.Getenv("VIGIL_TEST_MQTT"); u != "" {
		bs["mosquitto"] = func(*testing.T) string { return u }
	} else {
		t.Log("VIGIL_TEST_MQTT not set (e.g. tcp://127.0.0.1:1883); skipping the runs against a real Mosquitto")
	}
	return bs
}

// startMochi runs an in-process mochi-mqtt broker that allows every client
// and returns its URL.
func startMochi(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("test", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + ln.Addr().String()
}

// allowAll lets every client connect, publish and subscribe.
type allowAll struct{ mochi.HookBase }

func (allowAll) ID() string { return "allow-all" }
func (allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// received is what a subscriber got: payloads by topic (compared
// without order: the outbox claims due messages in its own order).
type received struct {
	mu  sync.Mutex
	got map[string][]string
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ps := range r.got {
		n += len(ps)
	}
	return n
}

// subscribe follows filter on broker with QoS 1 until the test ends.
func subscribe(t *testing.T, broker, filter string) *received {
	t.Helper()
	r := &received{got: map[string][]string{}}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(unique("sub-")).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect subscriber to %s: %v (is the broker running?)", broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.got[m.Topic()] = append(r.got[m.Topic()], string(m.Payload()))
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return r
}

// runPublisher runs an MQTT publisher to broker until the test ends and
// waits until it is connected.
func runPublisher(t *testing.T, broker string) *mqttingest.Publisher {
	t.Helper()
	p, err := mqttingest.NewPublisher(mqttingest.PublisherOptions{BrokerURL: broker, ClientID: unique("vigil-notify-"), AckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("publisher Run: %v", err)
		}
	})
	waitConnected(t, p)
	return p
}

// waitConnected waits until p accepts a publication (on a topic nobody
// follows).
func waitConnected(t *testing.T, p *mqttingest.Publisher) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.Publish(t.Context(), unique("vigil-probe-")+"/x", []byte("probe")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("publisher not connected within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits until the subscriber holds n messages (or 20 s passed).
func waitFor(t *testing.T, r *received, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// notifications adds anomaly notifications for the devices to the outbox
// and returns the payloads a subscriber of root/anomalies/+ should get,
// by topic.
func notifications(t *testing.T, db appdb.Store, root string, devices map[string]string) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for dev, level := range devices {
		for _, action := range []string{"open", "escalate", "close"} {
			id := unique("evt-")
			body := `{"id":"` + id + `","device":"` + dev + `","action":"` + action + `"}`
			if _, err := db.Outbox().Create(t.Context(), appdb.OutboxMessage{ID: id, Topic: "anomalies", Key: dev, Payload: []byte(body)}); err != nil {
				t.Fatal(err)
			}
			topic := root + "/anomalies/" + level
			want[topic] = append(want[topic], body)
		}
	}
	return want
}

func undelivered(t *testing.T, db appdb.Store) []appdb.OutboxMessage {
	t.Helper()
	f := false
	left, _, err := db.Outbox().Find(t.Context(), appdb.OutboxFilter{Delivered: &f})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// TestRelayMQTT: every anomaly notification goes to the webhook and, with
// QoS 1, to the device's MQTT topic, with the webhook's payload; each is
// marked delivered once both sinks accepted it.
func TestRelayMQTT(t *testing.T) {
	for name, start := range brokers(t) {
		t.Run("broker="+name, func(t *testing.T) {
			broker := start(t)
			db, rc, srv, clk := setup(t, 0)
			root := unique("vigil-test-")
			sub := subscribe(t, broker, root+"/anomalies/+")
			pub := runPublisher(t, broker)
			want := notifications(t, db, root, map[string]string{"pump-1": "pump-1", "fan-2": "fan-2", "site/a+b#": "site%2Fa%2Bb%23"})
			r := mustRelay(t, db.Outbox(), notify.Options{
				Webhook: &notify.Webhook{URL: srv.URL, Secret: secret},
				MQTT:    &notify.MQTT{Publisher: pub, Topic: root + "/anomalies/{device}"},
				Now:     clk.Now,
			})
			if n, err := r.RelayOnce(t.Context()); err != nil || n != 9 {
				t.Fatalf("RelayOnce = %d, %v; want 9, nil", n, err)
			}
			// Every PUBACK came back before the messages were marked
			// delivered; the subscriber gets them shortly after.
			waitFor(t, sub, 9)
			sub.mu.Lock()
			defer sub.mu.Unlock()
			if d := cmp.Diff(want, sub.got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
				t.Errorf("MQTT messages by topic (-want +got):\n%s", d)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.got) != 9 {
				t.Errorf("webhook got %d notifications, want 9", len(rc.got))
			}
			if left := undelivered(t, db); len(left) != 0 {
				t.Errorf("undelivered after relay: %d, want 0", len(left))
			}
		})
	}
}

// TestRelayMQTTBrokerAway: while the broker is away the notifications stay
// in the outbox (the webhook still gets them); once it is back, the next
// claims publish every one of them.
func TestRelayMQTTBrokerAway(t *testing.T) {
	for name, start := range brokers(t) {
		t.Run("broker="+name, func(t *testing.T) {
			broker := start(t)
			db, rc, srv, clk := setup(t, 0)
			root := unique("vigil-test-")
			sub := subscribe(t, broker, root+"/anomalies/+")
			px := tcpproxy.New(t, strings.TrimPrefix(broker, "tcp://"))
			pub := runPublisher(t, "tcp://"+px.Addr())
			r := mustRelay(t, db.Outbox(), notify.Options{
				Webhook: &notify.Webhook{URL: srv.URL, Secret: secret},
				MQTT:    &notify.MQTT{Publisher: pub, Topic: root + "/anomalies/{device}"},
				Now:     clk.Now, Tries: 3, RetryInitial: time.Millisecond, RescheduleInitial: time.Second, RescheduleMax: time.Minute,
			})

			px.Cut() // the broker goes away for Vigil
			want := notifications(t, db, root, map[string]string{"pump-1": "pump-1", "fan-2": "fan-2"})
			if _, err := r.RelayOnce(t.Context()); err != nil {
				t.Fatalf("RelayOnce: %v", err)
			}
			left := undelivered(t, db)
			if len(left) != 6 {
				t.Fatalf("undelivered while the broker is away: %d, want 6", len(left))
			}
			for _, m := range left {
				if m.LastError == "" || !m.NextAttemptAt.After(clk.Now()) {
					t.Errorf("message %s: last error %q, due %v; want an error and due after %v", m.ID, m.LastError, m.NextAttemptAt, clk.Now())
				}
			}
			rc.mu.Lock()
			if rc.requests != 6 {
				t.Errorf("webhook requests during one claim with 3 tries: %d, want 6 (no repeat of an accepted delivery)", rc.requests)
			}
			rc.mu.Unlock()

			px.Restore()
			waitConnected(t, pub)
			for range 10 {
				if len(undelivered(t, db)) == 0 {
					break
				}
				clk.Add(2 * time.Minute)
				if _, err := r.RelayOnce(t.Context()); err != nil {
					t.Fatalf("RelayOnce: %v", err)
				}
			}
			if left := undelivered(t, db); len(left) != 0 {
				t.Fatalf("undelivered after the broker came back: %d, want 0", len(left))
			}
			waitFor(t, sub, 6)
			sub.mu.Lock()
			defer sub.mu.Unlock()
			if d := cmp.Diff(want, sub.got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
				t.Errorf("MQTT messages by topic (-want +got):\n%s", d)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			// At least once: the rescheduled claim sends the webhook its
			// notifications again.
			if len(rc.got) != 6 || rc.requests < 12 {
				t.Errorf("webhook: %d distinct notifications in %d requests, want 6 in at least 12", len(rc.got), rc.requests)
			}
		})
	}
}
