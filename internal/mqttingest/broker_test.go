package mqttingest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/mqttingest"
	"github.com/vigil-iot/vigil/internal/notify"
)

const notifyTopic = "vigil/anomalies/{device}"

// startBroker runs the embedded broker, with notifications on notifyTopic,
// on a real TCP listener until the test ends, and returns it and its URL.
func startBroker(t *testing.T, e *env) (*mqttingest.Broker, string) {
	t.Helper()
	nt, err := mqttingest.ParseTemplate(notifyTopic)
	if err != nil {
		t.Fatal(err)
	}
	br, err := mqttingest.NewBroker(e.in, mqttingest.BrokerOptions{NotifyTopic: nt, Decoder: e.dec, Verifier: e.verifier})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return br, "tcp://" + ln.Addr().String()
}

// message is one message a subscriber received.
type message struct{ Topic, Payload string }

// subscribe subscribes c to filter with QoS 1 and returns whether the
// broker granted it, and the channel of the messages it receives.
func subscribe(t *testing.T, c paho.Client, filter string) (bool, <-chan message) {
	t.Helper()
	ch := make(chan message, 100)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		ch <- message{m.Topic(), string(m.Payload())}
	})
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("subscribe %s: no SUBACK", filter)
	}
	if tok.Error() != nil {
		return false, ch
	}
	code, ok := tok.(*paho.SubscribeToken).Result()[filter]
	return ok && code <= 2, ch
}

// receive returns the next n messages of ch, or fails.
func receive(t *testing.T, ch <-chan message, n int) []message {
	t.Helper()
	var got []message
	for len(got) < n {
		select {
		case m := <-ch:
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d messages %v, want %d", len(got), got, n)
		}
	}
	return got
}

// TestBrokerSubscriptions: readers subscribe to the notification topic
// within their token's devices; a device to its own notifications only;
// nobody to anything else.
func TestBrokerSubscriptions(t *testing.T) {
	e := newEnv(t)
	_, url := startBroker(t, e)
	reader := e.token(t, appdb.RoleRead, "")
	pumpReader := e.token(t, appdb.RoleRead, "pump-")
	admin := e.token(t, appdb.RoleAdmin, "")
	pumpWriter := e.token(t, appdb.RoleWrite, "pump-")
	for _, c := range []struct {
		name, user, token string
		granted           []string
		refused           []string
	}{
		{"reader", "dashboard", reader,
			[]string{"vigil/anomalies/+", "vigil/anomalies/pump-1", "vigil/anomalies/site%2Fa%2Bb%23"},
			[]string{"#", "vigil/#", "vigil/anomalies/#", "vigil/+/+", "+/anomalies/+", "vigil/anomalies/+/x", "vigil/pump-1/telemetry", "vigil/+/telemetry", "$SYS/#", "vigil/anomalies/a%2"}},
		{"device-limited reader", "dashboard", pumpReader,
			[]string{"vigil/anomalies/pump-1", "vigil/anomalies/pump-2"},
			[]string{"vigil/anomalies/+", "vigil/anomalies/fan-1", "#", "vigil/anomalies/#"}},
		{"device", "pump-1", pumpWriter,
			[]string{"vigil/anomalies/pump-1"},
			[]string{"vigil/anomalies/pump-2", "vigil/anomalies/+", "vigil/pump-1/telemetry", "#"}},
		{"device named with reserved characters", "site/a+b#", admin,
			[]string{"vigil/anomalies/site%2Fa%2Bb%23"},
			[]string{"vigil/anomalies/site/a+b#", "vigil/anomalies/+"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := connect(t, url, unique("c"), c.user, c.token)
			if err != nil {
				t.Fatalf("connect as %q: %v", c.user, err)
			}
			for _, f := range c.granted {
				if ok, _ := subscribe(t, cl, f); !ok {
					t.Errorf("subscribe %q as %q: refused, want granted", f, c.user)
				}
			}
			for _, f := range c.refused {
				if ok, _ := subscribe(t, cl, f); ok {
					t.Errorf("subscribe %q as %q: granted, want refused", f, c.user)
				}
			}
		})
	}
}

// TestBrokerPublish: Publish reaches exactly the subscribers allowed to
// see the device's notifications.
func TestBrokerPublish(t *testing.T) {
	e := newEnv(t)
	br, url := startBroker(t, e)

	all, err := connect(t, url, "all", "dashboard", e.token(t, appdb.RoleRead, ""))
	if err != nil {
		t.Fatal(err)
	}
	pumps, err := connect(t, url, "pumps", "dashboard", e.token(t, appdb.RoleRead, "pump-"))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := connect(t, url, "pump-1", "pump-1", e.token(t, appdb.RoleWrite, "pump-"))
	if err != nil {
		t.Fatal(err)
	}
	var chs []<-chan message
	for _, s := range []struct {
		c      paho.Client
		filter string
	}{{all, "vigil/anomalies/+"}, {pumps, "vigil/anomalies/pump-2"}, {dev, "vigil/anomalies/pump-1"}} {
		ok, ch := subscribe(t, s.c, s.filter)
		if !ok {
			t.Fatalf("subscribe %s: refused", s.filter)
		}
		chs = append(chs, ch)
	}
	for _, d := range []string{"fan-1", "pump-1", "pump-2"} {
		if err := br.Publish(t.Context(), "vigil/anomalies/"+d, []byte(`{"device":"`+d+`"}`)); err != nil {
			t.Fatalf("Publish for %s: %v", d, err)
		}
	}
	msg := func(d string) message { return message{"vigil/anomalies/" + d, `{"device":"` + d + `"}`} }
	// Messages of one publisher reach a subscriber in order.
	if diff := cmp.Diff([]message{msg("fan-1"), msg("pump-1"), msg("pump-2")}, receive(t, chs[0], 3)); diff != "" {
		t.Errorf("reader of +: (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]message{msg("pump-2")}, receive(t, chs[1], 1)); diff != "" {
		t.Errorf("reader of pump-2: (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]message{msg("pump-1")}, receive(t, chs[2], 1)); diff != "" {
		t.Errorf("device pump-1: (-want +got):\n%s", diff)
	}
	// A last message to each: whatever else had arrived would come first.
	if err := br.Publish(t.Context(), "vigil/anomalies/pump-1", []byte("end")); err != nil {
		t.Fatal(err)
	}
	if err := br.Publish(t.Context(), "vigil/anomalies/pump-2", []byte("end")); err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{"pump-1", "pump-2", "pump-1"} {
		want := []message{{"vigil/anomalies/" + d, "end"}}
		if i == 0 {
			want = []message{{"vigil/anomalies/pump-1", "end"}, {"vigil/anomalies/pump-2", "end"}}
		}
		if diff := cmp.Diff(want, receive(t, chs[i], len(want))); diff != "" {
			t.Errorf("subscriber %d, last messages (-want +got):\n%s", i, diff)
		}
	}
}

// TestBrokerReaderCannotPublish: a read token subscribes but never
// publishes, telemetry or anything else.
func TestBrokerReaderCannotPublish(t *testing.T) {
	e := newEnv(t)
	_, url := startBroker(t, e)
	for _, topic := range []string{"vigil/pump-1/telemetry", "vigil/anomalies/pump-1"} {
		c, err := connect(t, url, unique("r"), "pump-1", e.token(t, appdb.RoleRead, ""))
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Publish(topic, 1, false, fmt.Sprintf("flow rate=1 %d", time.Now().UnixMilli()))
		if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			t.Errorf("reader publish on %s: acknowledged, want refusal", topic)
		}
	}
	if got := e.values(t, "flow"); len(got) != 0 {
		t.Errorf("after a reader's publish: %d series stored, want none", len(got))
	}
}

// TestBrokerPublishUnavailable: Publish fails with ErrUnavailable before
// Run serves and after it stopped.
func TestBrokerPublishUnavailable(t *testing.T) {
	e := newEnv(t)
	br, err := mqttingest.NewBroker(e.in, mqttingest.BrokerOptions{Decoder: e.dec, Verifier: e.verifier})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Publish(t.Context(), "vigil/anomalies/d", []byte("x")); !errors.Is(err, mqttingest.ErrUnavailable) {
		t.Errorf("Publish before Run: %v, want ErrUnavailable", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx, ln) }()
	// Run serves once a client can connect.
	if _, err := connect(t, "tcp://"+ln.Addr().String(), "r", "r", e.token(t, appdb.RoleRead, "")); err != nil {
		t.Fatal(err)
	}
	if err := br.Publish(t.Context(), "vigil/anomalies/d", []byte("x")); err != nil {
		t.Errorf("Publish while serving: %v, want nil", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := br.Publish(t.Context(), "vigil/anomalies/d", []byte("x")); !errors.Is(err, mqttingest.ErrUnavailable) {
		t.Errorf("Publish after Run stopped: %v, want ErrUnavailable", err)
	}
}

// TestRelayThroughBroker: the outbox relay publishes anomaly notifications
// on the embedded broker, on the topics notify.MQTT.TopicFor names, and
// subscribers get them.
func TestRelayThroughBroker(t *testing.T) {
	e := newEnv(t)
	br, url := startBroker(t, e)
	c, err := connect(t, url, "dash", "dashboard", e.token(t, appdb.RoleRead, ""))
	if err != nil {
		t.Fatal(err)
	}
	ok, all := subscribe(t, c, "vigil/anomalies/+")
	if !ok {
		t.Fatal("subscribe vigil/anomalies/+: refused")
	}
	odd := "site/a+b#"
	dev, err := connect(t, url, "odd", odd, e.token(t, appdb.RoleWrite, "site/"))
	if err != nil {
		t.Fatal(err)
	}
	q := &notify.MQTT{Publisher: br, Topic: notifyTopic}
	ok, own := subscribe(t, dev, q.TopicFor(odd))
	if !ok {
		t.Fatalf("device %q: subscribe %s: refused", odd, q.TopicFor(odd))
	}
	for _, d := range []string{"pump-1", odd} {
		if _, err := e.db.Outbox().Create(t.Context(), appdb.OutboxMessage{Topic: "anomalies", Key: d, Payload: []byte(`{"device":"` + d + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := notify.NewRelay(e.db.Outbox(), notify.Options{MQTT: q})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.RelayOnce(t.Context()); err != nil || n != 2 {
		t.Fatalf("RelayOnce = %d, %v; want 2, nil", n, err)
	}
	got := receive(t, all, 2)
	want := map[message]bool{
		{"vigil/anomalies/pump-1", `{"device":"pump-1"}`}:             true,
		{"vigil/anomalies/site%2Fa%2Bb%23", `{"device":"site/a+b#"}`}: true,
	}
	if diff := cmp.Diff(want, map[message]bool{got[0]: true, got[1]: true}); diff != "" {
		t.Errorf("reader of + (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]message{{"vigil/anomalies/site%2Fa%2Bb%23", `{"device":"site/a+b#"}`}}, receive(t, own, 1)); diff != "" {
		t.Errorf("device %q (-want +got):\n%s", odd, diff)
	}
	f := false
	if left, _, err := e.db.Outbox().Find(t.Context(), appdb.OutboxFilter{Delivered: &f}); err != nil || len(left) != 0 {
		t.Errorf("undelivered after relay: %d, %v; want 0, nil", len(left), err)
	}
}
