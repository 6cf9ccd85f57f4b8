package mqttingest

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v5"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// SubscriberOptions configures a Subscriber.
type SubscriberOptions struct {
	// BrokerURL is the broker, e.g. tcp://127.0.0.1:1883 or
	// tcp://user:password@host:1883 (ssl:// and ws:// work too).
	BrokerURL string
	// Topic is the topic template; default DefaultTopic.
	Topic Template
	// ClientID identifies Vigil's session at the broker. It must be stable
	// across restarts: with a persistent session the broker keeps QoS 1
	// messages published while Vigil is away. Default "vigil-ingest".
	ClientID string
	// Decoder decodes payloads.
	Decoder *Decoder
	// Logger receives connection changes and refused messages.
	Logger *slog.Logger
	// MaxRetryInterval caps the wait between attempts to write a message
	// while the store is unavailable. Default 5s.
	MaxRetryInterval time.Duration
}

// Subscriber follows a topic on an external MQTT broker and writes what it
// receives. It subscribes with QoS 1 in a persistent session, acknowledges
// a message only once its points are durable (or refused for good), and
// resubscribes after every reconnect.
type Subscriber struct {
	opts SubscriberOptions
	w    Writer
}

// NewSubscriber returns a Subscriber writing to w. It does not connect.
func NewSubscriber(w Writer, opts SubscriberOptions) (*Subscriber, error) {
	if _, err := url.Parse(opts.BrokerURL); err != nil || opts.BrokerURL == "" {
		return nil, fmt.Errorf("mqtt broker URL %q: want e.g. tcp://127.0.0.1:1883: %w", opts.BrokerURL, ErrInvalid)
	}
	if opts.Topic.levels == nil {
		opts.Topic, _ = ParseTemplate(DefaultTopic)
	}
	if opts.ClientID == "" {
		opts.ClientID = "vigil-ingest"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRetryInterval <= 0 {
		opts.MaxRetryInterval = 5 * time.Second
	}
	if opts.Decoder == nil {
		return nil, fmt.Errorf("mqtt subscriber: no decoder: %w", ErrInvalid)
	}
	return &Subscriber{opts: opts, w: w}, nil
}

// Run connects, subscribes and writes messages until ctx is cancelled. It
// keeps reconnecting while the broker is away. Messages being written when
// ctx ends are not acknowledged, so the broker redelivers them to the next
// session.
func (s *Subscriber) Run(ctx context.Context) error {
	log := s.opts.Logger.With("broker", redact(s.opts.BrokerURL), "topic", s.opts.Topic.Filter())
	filter := s.opts.Topic.Filter()
	handler := func(_ paho.Client, m paho.Message) { s.handle(ctx, log, m) }

	o := paho.NewClientOptions().
		AddBroker(s.opts.BrokerURL).
		SetClientID(s.opts.ClientID).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			// Subscribe again on every (re)connect: a broker that lost
			// its state (restarted without persistence) forgets us.
			tok := c.Subscribe(filter, 1, handler)
			go func() {
				if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
					log.Error("mqtt subscribe failed", "err", tok.Error())
					return
				}
				log.Info("mqtt subscribed")
			}()
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("mqtt connection lost; reconnecting", "err", err)
		})
	if u, err := url.Parse(s.opts.BrokerURL); err == nil && u.User != nil {
		o.SetUsername(u.User.Username())
		if p, ok := u.User.Password(); ok {
			o.SetPassword(p)
		}
	}
	c := paho.NewClient(o)
	c.Connect() // with ConnectRetry it keeps trying in the background
	<-ctx.Done()
	c.Disconnect(250)
	return nil
}

// handle writes one message, retrying while the store is unavailable, and
// acknowledges it once durable or refused for good.
func (s *Subscriber) handle(ctx context.Context, log *slog.Logger, m paho.Message) {
	device, ok := s.opts.Topic.Device(m.Topic())
	if !ok {
		log.Warn("mqtt message on a topic outside the template; dropped", "mqtt_topic", m.Topic())
		m.Ack()
		return
	}
	b := backoff.NewExponentialBackOff()
	b.MaxInterval = s.opts.MaxRetryInterval
	for {
		refused, err := write(ctx, s.w, s.opts.Decoder, device, m.Payload())
		if err == nil {
			if refused != nil {
				log.Warn("mqtt message refused in part or whole", "device", device, "err", refused)
			}
			m.Ack()
			return
		}
		wait := b.NextBackOff()
		log.Warn("mqtt write failed; will retry", "device", device, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return // not acknowledged: the broker redelivers it
		case <-time.After(wait):
		}
	}
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}
