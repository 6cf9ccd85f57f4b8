package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// DefaultTopic is the MQTT topic template devices publish on.
const DefaultTopic = "vigil/{device}/telemetry"

// MQTTPublisher publishes points as MQTT devices do: one client per device,
// logged in with the device ID as username and a write token as password,
// publishing line protocol (nanosecond timestamps) with QoS 1 on the
// device's topic. A PUBACK from Vigil's broker means stored. Connect before
// Write; Close disconnects. It is safe for concurrent use after Connect.
type MQTTPublisher struct {
	// Broker is the broker URL, e.g. "tcp://localhost:1883".
	Broker string
	// Token is the password of every device.
	Token string
	// Topic is the topic template with one {device} level; "" means
	// DefaultTopic.
	Topic string
	// MaxLines bounds the lines of one message; 0 means 500.
	MaxLines int
	// Timeout bounds connecting and each acknowledgement; 0 means 10s.
	Timeout time.Duration

	mu      sync.Mutex
	clients map[string]paho.Client
}

func (p *MQTTPublisher) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 10 * time.Second
	}
	return p.Timeout
}

// Connect connects one client per device, a few at a time. A refusal of the
// credentials wraps ErrUnauthorized. On error the clients already connected
// stay connected until Close.
func (p *MQTTPublisher) Connect(ctx context.Context, devices []string) error {
	topic := p.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	if strings.Count(topic, "{device}") != 1 {
		return fmt.Errorf("mqtt topic %q: %w: want exactly one {device}", topic, ErrInvalid)
	}
	p.mu.Lock()
	if p.clients == nil {
		p.clients = make(map[string]paho.Client, len(devices))
	}
	p.mu.Unlock()
	sem := make(chan struct{}, 16)
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for _, dev := range devices {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := paho.NewClient(paho.NewClientOptions().AddBroker(p.Broker).SetClientID("sim-" + dev).
				SetUsername(dev).SetPassword(p.Token).SetCleanSession(true).SetAutoReconnect(false).
				SetConnectRetry(false).SetConnectTimeout(p.timeout()).SetOrderMatters(false))
			if err := wait(ctx, c.Connect(), p.timeout()); err != nil {
				if errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
					err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
				}
				emu.Lock()
				errs = append(errs, fmt.Errorf("mqtt connect %s as device %s: %w", p.Broker, dev, err))
				emu.Unlock()
				return
			}
			p.mu.Lock()
			p.clients[dev] = c
			p.mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// wait waits for t to complete within timeout, or ctx to end.
func wait(ctx context.Context, t paho.Token, timeout time.Duration) error {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return fmt.Errorf("no answer within %v", timeout)
	}
}

// Write publishes pts, grouped by device into messages of at most MaxLines
// lines, and returns once every message was acknowledged.
func (p *MQTTPublisher) Write(ctx context.Context, pts []telemetry.Point) error {
	maxLines := p.MaxLines
	if maxLines <= 0 {
		maxLines = 500
	}
	topic := p.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	var order []string
	byDev := map[string][]telemetry.Point{}
	for _, pt := range pts {
		d := pt.Series.Device()
		if _, ok := byDev[d]; !ok {
			order = append(order, d)
		}
		byDev[d] = append(byDev[d], pt)
	}
	type pending struct {
		dev string
		tok paho.Token
	}
	var toks []pending
	for _, dev := range order {
		p.mu.Lock()
		c := p.clients[dev]
		p.mu.Unlock()
		if c == nil {
			return fmt.Errorf("mqtt publish: device %q not connected", dev)
		}
		body, err := telemetry.AppendPoints(nil, byDev[dev], telemetry.Nanosecond)
		if err != nil {
			return fmt.Errorf("mqtt publish device %s: encode: %w", dev, err)
		}
		t := strings.Replace(topic, "{device}", dev, 1)
		for len(body) > 0 {
			n, cut := 0, 0
			for cut < len(body) && n < maxLines {
				i := bytes.IndexByte(body[cut:], '\n')
				if i < 0 {
					cut = len(body)
					break
				}
				cut += i + 1
				n++
			}
			toks = append(toks, pending{dev, c.Publish(t, 1, false, body[:cut])})
			body = body[cut:]
		}
	}
	for _, pt := range toks {
		if err := wait(ctx, pt.tok, p.timeout()); err != nil {
			return fmt.Errorf("mqtt publish device %s: %w", pt.dev, err)
		}
	}
	return nil
}

// Close disconnects every client. It is idempotent.
func (p *MQTTPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Disconnect(250)
	}
	p.clients = nil
	return nil
}
