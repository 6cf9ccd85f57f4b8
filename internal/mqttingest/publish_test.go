package mqttingest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil/internal/mqttingest"
)

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
			t.Errorf("Run: %v", err)
		}
	})
	return p
}

// TestPublisherUnavailable: without a connection Publish fails at once
// with ErrUnavailable, so the caller keeps the message.
func TestPublisherUnavailable(t *testing.T) {
	if _, err := mqttingest.NewPublisher(mqttingest.PublisherOptions{}); !errors.Is(err, mqttingest.ErrInvalid) {
		t.Errorf("NewPublisher without a broker URL: %v, want ErrInvalid", err)
	}
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := mqttingest.NewPublisher(mqttingest.PublisherOptions{BrokerURL: "tcp://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), "vigil/anomalies/d1", []byte("{}")); !errors.Is(err, mqttingest.ErrUnavailable) {
		t.Errorf("Publish before Run: %v, want ErrUnavailable", err)
	}
	p = runPublisher(t, "tcp://"+addr)
	if err := p.Publish(t.Context(), "vigil/anomalies/d1", []byte("{}")); !errors.Is(err, mqttingest.ErrUnavailable) {
		t.Errorf("Publish with the broker away: %v, want ErrUnavailable", err)
	}
}

// TestPublisherMosquitto publishes to the real Mosquitto broker: a nil
// error means the broker acknowledged, and a subscriber gets the message.
func TestPublisherMosquitto(t *testing.T) {
	broker := os.Getenv("VIGIL_TEST_MQTT")
	if broker == "" {
		t.Skip("VIGIL_TEST_MQTT not set (e.g. tcp://127.0.0.1:1883); skipping the test against a real MQTT broker")
	}
	root := unique("vigiltest-")
	sub, err := connect(t, broker, unique("sub-"), "", "")
	if err != nil {
		t.Fatalf("connect to %s: %v (is Mosquitto running? see README)", broker, err)
	}
	got := make(chan [2]string, 10)
	if tok := sub.Subscribe(root+"/anomalies/+", 1, func(_ paho.Client, m paho.Message) {
		got <- [2]string{m.Topic(), string(m.Payload())}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	p := runPublisher(t, broker)
	want := [2]string{root + "/anomalies/pump-1", `{"action":"open"}`}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := p.Publish(t.Context(), want[0], []byte(want[1]))
		if err == nil {
			break
		}
		if !errors.Is(err, mqttingest.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Publish: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case m := <-got:
		if m != want {
			t.Errorf("received %q, want %q", m, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("subscriber received nothing within 20s of the PUBACK")
	}
}
