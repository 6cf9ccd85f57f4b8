package mqttingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vigil-iot/vigil/internal/auth"
)

// Verifier checks a token; *auth.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, secret string) (auth.Principal, error)
}

// BrokerOptions configures the embedded broker.
type BrokerOptions struct {
	// Topic is the topic template devices publish on; default DefaultTopic.
	Topic Template
	// Decoder decodes payloads.
	Decoder *Decoder
	// Verifier checks device credentials: the MQTT username is the device
	// ID and the password an API token with the write role whose device
	// prefix (if any) covers that device.
	Verifier Verifier
	// Logger receives connection and refusal messages.
	Logger *slog.Logger
}

// Broker is an embedded MQTT broker (mochi-mqtt) that devices connect to
// straight. Each device authenticates with its own credentials, may only
// publish on its own topic, and gets its PUBACK only after its points are
// durable. It does not relay messages to other clients.
type Broker struct {
	opts BrokerOptions
	w    Writer
}

// NewBroker returns a Broker writing to w. It does not listen.
func NewBroker(w Writer, opts BrokerOptions) (*Broker, error) {
	if opts.Topic.levels == nil {
		opts.Topic, _ = ParseTemplate(DefaultTopic)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decoder == nil || opts.Verifier == nil {
		return nil, fmt.Errorf("mqtt broker: decoder and verifier are required: %w", ErrInvalid)
	}
	return &Broker{opts: opts, w: w}, nil
}

// Run serves MQTT on ln until ctx is cancelled, then closes the listener
// and every client connection.
func (b *Broker) Run(ctx context.Context, ln net.Listener) error {
	srv := mqtt.New(&mqtt.Options{Logger: b.opts.Logger.With("component", "mqtt-broker"), InlineClient: false})
	if err := srv.AddHook(&hook{b: b, ctx: ctx}, nil); err != nil {
		return fmt.Errorf("mqtt broker: add hook: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("vigil", ln)); err != nil {
		return fmt.Errorf("mqtt broker: add listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("mqtt broker: serve: %w", err)
	}
	b.opts.Logger.Info("mqtt broker listening", "addr", ln.Addr().String(), "topic", b.opts.Topic.String())
	<-ctx.Done()
	return srv.Close()
}

// hook authenticates devices, restricts them to their topic and writes
// their messages before the broker acknowledges them.
type hook struct {
	mqtt.HookBase
	b *Broker
	// ctx is the broker's run context: mochi's hook API passes none, and
	// writes must stop when the broker stops.
	ctx context.Context
}

func (h *hook) ID() string { return "vigil-ingest" }

func (h *hook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, b) >= 0
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	device := string(pk.Connect.Username)
	log := h.b.opts.Logger.With("device", device, "remote", cl.Net.Remote)
	if device == "" {
		log.Warn("mqtt connect refused: no username (the username is the device ID)")
		return false
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	p, err := h.b.opts.Verifier.Verify(ctx, string(pk.Connect.Password))
	if err == nil {
		err = p.Require(auth.RoleWrite)
	}
	if err == nil && !p.AllowsDevice(device) {
		err = fmt.Errorf("token %s is limited to devices starting with %q", p.TokenID, p.DevicePrefix)
	}
	if err != nil {
		log.Warn("mqtt connect refused", "err", err)
		return false
	}
	return true
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !write {
		return false // devices publish; nothing is relayed to subscribers
	}
	device, ok := h.b.opts.Topic.Device(topic)
	return ok && device == string(cl.Properties.Username)
}

// OnPublish runs before the broker sends PUBACK: the points are durable
// once it returns the packet. A store failure rejects the packet without
// acknowledgement, so the device sends it again.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	device, _ := h.b.opts.Topic.Device(pk.TopicName)
	refused, err := write(h.ctx, h.b.w, h.b.opts.Decoder, device, pk.Payload)
	if err != nil {
		h.b.opts.Logger.Warn("mqtt write failed; message not acknowledged, the device will resend it", "device", device, "err", err)
		return pk, packets.ErrRejectPacket
	}
	if refused != nil {
		h.b.opts.Logger.Warn("mqtt message refused in part or whole", "device", device, "err", refused)
	}
	pk.Ignore = true // stored; nothing to relay
	return pk, nil
}
