package mqttingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ErrUnavailable marks a publication that failed because the broker is not
// connected or did not acknowledge it in time; publish again later.
var ErrUnavailable = errors.New("mqtt broker unavailable")

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// BrokerURL is the broker, as for SubscriberOptions.BrokerURL.
	BrokerURL string
	// ClientID identifies the publisher's session; it must differ from the
	// subscriber's. Default "vigil-notify".
	ClientID string
	// AckTimeout bounds the wait for the broker's PUBACK. Default 10s.
	AckTimeout time.Duration
	// Logger receives connection changes.
	Logger *slog.Logger
}

// Publisher publishes to an external MQTT broker with QoS 1. It keeps one
// connection (clean session) and reconnects while the broker is away;
// meanwhile Publish fails at once with ErrUnavailable, so the caller keeps
// the message and tries again later.
type Publisher struct {
	opts PublisherOptions
	mu   sync.Mutex
	c    paho.Client // nil until Run
}

// NewPublisher returns a Publisher. It does not connect.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if _, err := url.Parse(opts.BrokerURL); err != nil || opts.BrokerURL == "" {
		return nil, fmt.Errorf("mqtt broker URL %q: want e.g. tcp://127.0.0.1:1883: %w", redact(opts.BrokerURL), ErrInvalid)
	}
	if opts.ClientID == "" {
		opts.ClientID = "vigil-notify"
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{opts: opts}, nil
}

// Run connects and keeps the connection until ctx is cancelled, then
// disconnects. It reconnects whenever the connection is lost.
func (p *Publisher) Run(ctx context.Context) error {
	log := p.opts.Logger.With("broker", redact(p.opts.BrokerURL), "client_id", p.opts.ClientID)
	o := paho.NewClientOptions().
		AddBroker(p.opts.BrokerURL).
		SetClientID(p.opts.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(func(paho.Client) { log.Info("mqtt publisher connected") }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("mqtt publisher connection lost; reconnecting", "err", err)
		})
	if u, err := url.Parse(p.opts.BrokerURL); err == nil && u.User != nil {
		o.SetUsername(u.User.Username())
		if pw, ok := u.User.Password(); ok {
			o.SetPassword(pw)
		}
	}
	c := paho.NewClient(o)
	p.mu.Lock()
	p.c = c
	p.mu.Unlock()
	c.Connect() // with ConnectRetry it keeps trying in the background
	<-ctx.Done()
	p.mu.Lock()
	p.c = nil
	p.mu.Unlock()
	c.Disconnect(250)
	return nil
}

// Publish sends payload on topic with QoS 1, not retained, and returns nil
// once the broker acknowledged it (PUBACK). It fails with ErrUnavailable
// when Run is not connected or no PUBACK came within AckTimeout; the
// broker may still have received that message, so a retry can repeat it.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte) error {
	p.mu.Lock()
	c := p.c
	p.mu.Unlock()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("mqtt publish to %s: not connected: %w", topic, ErrUnavailable)
	}
	tok := c.Publish(topic, 1, false, payload)
	t := time.NewTimer(p.opts.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt publish to %s: %w: %w", topic, ErrUnavailable, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("mqtt publish to %s: no PUBACK within %v: %w", topic, p.opts.AckTimeout, ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("mqtt publish to %s: %w", topic, ctx.Err())
	}
}
