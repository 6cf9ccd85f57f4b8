package mqttingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
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
	// NotifyTopic, when set, is the template of the topics Publish sends
	// anomaly notifications on (e.g. "vigil/anomalies/{device}", only
	// literal levels besides {device}); clients may subscribe to it as
	// described on Broker. Unset, no client may subscribe to anything.
	NotifyTopic Template
	// Decoder decodes payloads.
	Decoder *Decoder
	// Verifier checks credentials (see Broker).
	Verifier Verifier
	// Logger receives connection and refusal messages.
	Logger *slog.Logger
}

// Broker is an embedded MQTT broker (mochi-mqtt) that devices connect to
// straight, and that relays the messages of Publish (anomaly
// notifications) to subscribers. The password of every client is an API
// token; the token and the username decide what the client may do:
//
//   - Device: a token with the write role (or admin) and a non-empty
//     username naming a device the token allows (its device prefix). The
//     client may publish telemetry on its own device's topic only, and
//     subscribe to its own device's notification topic only. Its PUBACK
//     comes only after its points are durable. A write token with a
//     username outside its device prefix is refused.
//   - Subscriber: a read token with any username, or a write or admin token
//     with an empty username. The client may subscribe to the notification
//     topic filter only: the levels of NotifyTopic with the {device} level
//     either a device the token allows or, when the token has no device
//     prefix, "+". Never "#", never another topic; it may not publish.
//
// Everything else is refused, and the refusal logged with its reason.
type Broker struct {
	opts BrokerOptions
	w    Writer

	mu  sync.RWMutex
	srv *mqtt.Server // set while Run serves
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
	for i, l := range opts.NotifyTopic.levels {
		if l == "+" && i != opts.NotifyTopic.deviceLevel {
			return nil, fmt.Errorf("mqtt broker: notify topic %q: level %q: only literal levels and one {device} are allowed: %w", opts.NotifyTopic, l, ErrInvalid)
		}
	}
	return &Broker{opts: opts, w: w}, nil
}

// Run serves MQTT on ln until ctx is cancelled, then closes the listener
// and every client connection.
func (b *Broker) Run(ctx context.Context, ln net.Listener) error {
	srv := mqtt.New(&mqtt.Options{Logger: b.opts.Logger.With("component", "mqtt-broker"), InlineClient: true})
	if err := srv.AddHook(&hook{b: b, ctx: ctx}, nil); err != nil {
		return fmt.Errorf("mqtt broker: add hook: %w", err)
	}
	const listener = "vigil"
	if err := srv.AddListener(listeners.NewNet(listener, ln)); err != nil {
		return fmt.Errorf("mqtt broker: add listener: %w", err)
	}
	// Publish works from here on: once a client can connect, it can get
	// messages.
	b.setServer(srv)
	if err := srv.Serve(); err != nil {
		b.setServer(nil)
		return fmt.Errorf("mqtt broker: serve: %w", err)
	}
	b.opts.Logger.Info("mqtt broker listening", "addr", ln.Addr().String(), "topic", b.opts.Topic.String())
	<-ctx.Done()
	b.setServer(nil) // waits for the Publish calls in progress
	// mochi v2.7.9 closes a listener's clients with Clients.GetByListener,
	// which takes the clients' read lock twice and deadlocks when a client
	// connects or disconnects in between (mochi-mqtt/server#488). Close the
	// listener first with a closer that takes that lock once; srv.Close
	// then finds it closed and only waits for the client goroutines.
	srv.Listeners.Close(listener, func(id string) {
		for _, cl := range srv.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
	return srv.Close()
}

func (b *Broker) setServer(srv *mqtt.Server) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv = srv
}

// Publish sends payload on topic with QoS 1, not retained, to the clients
// subscribed to it now; it implements notify.MQTTPublisher. It returns
// once the message is queued for every such client (there is no broker to
// acknowledge it: nil means the embedded broker took it). Clients that are
// not connected, or whose outbound queue is full, miss it; with no
// subscriber the message is dropped, as an external broker would. Before
// Run serves and after it stopped, it fails with ErrUnavailable. It is safe
// for concurrent use and does not keep payload.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt publish to %s: %w", topic, err)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.srv == nil {
		return fmt.Errorf("mqtt publish to %s: embedded broker not running: %w", topic, ErrUnavailable)
	}
	// mochi copies the packet for each subscriber; payload is not kept.
	if err := b.srv.Publish(topic, bytes.Clone(payload), false, 1); err != nil {
		return fmt.Errorf("mqtt publish to %s: embedded broker: %w: %w", topic, ErrUnavailable, err)
	}
	return nil
}

// session is what a connected client may do.
type session struct {
	principal auth.Principal
	// device is the device a device client publishes for; empty for a
	// subscriber.
	device string
}

// hook authenticates clients, restricts them to their topics and writes
// device messages before the broker acknowledges them.
type hook struct {
	mqtt.HookBase
	b *Broker
	// ctx is the broker's run context: mochi's hook API passes none, and
	// writes must stop when the broker stops.
	ctx context.Context
	// sessions holds a *session per authenticated *mqtt.Client, removed
	// when it disconnects.
	sessions sync.Map
}

func (h *hook) ID() string { return "vigil-ingest" }

func (h *hook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnDisconnect}, b) >= 0
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	log := h.b.opts.Logger.With("device", user, "remote", cl.Net.Remote)
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	p, err := h.b.opts.Verifier.Verify(ctx, string(pk.Connect.Password))
	if err == nil {
		err = p.Require(auth.RoleRead)
	}
	if err != nil {
		log.Warn("mqtt connect refused", "err", err)
		return false
	}
	s := &session{principal: p}
	if user != "" && p.Role.Allows(auth.RoleWrite) {
		if !p.AllowsDevice(user) {
			log.Warn("mqtt connect refused", "err", fmt.Errorf("token %s is limited to devices starting with %q", p.TokenID, p.DevicePrefix))
			return false
		}
		s.device = user
	}
	h.sessions.Store(cl, s)
	return true
}

func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.sessions.Delete(cl)
}

// OnACLCheck is called for a publish (write), for each filter of a
// subscribe and for each message relayed to a subscriber (not write).
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	v, ok := h.sessions.Load(cl)
	if !ok {
		return false
	}
	s := v.(*session)
	refuse := func(msg string, args ...any) bool {
		h.b.opts.Logger.Warn(msg, append([]any{"device", s.device, "token", s.principal.TokenID, "topic", topic, "remote", cl.Net.Remote}, args...)...)
		return false
	}
	if write {
		if s.device == "" {
			return refuse("mqtt publish refused: subscribers may not publish (devices log in with their device ID as username and a write token)")
		}
		if device, ok := h.b.opts.Topic.Device(topic); !ok || device != s.device {
			return refuse("mqtt publish refused: a device publishes on its own topic only", "want", h.b.opts.Topic.Topic(s.device))
		}
		return true
	}
	if err := h.mayRead(s, topic); err != nil {
		return refuse("mqtt subscribe refused", "err", err)
	}
	return true
}

// mayRead reports why s may not subscribe to filter (or receive a message
// on that topic), or nil when it may.
func (h *hook) mayRead(s *session, filter string) error {
	t := h.b.opts.NotifyTopic
	if t.levels == nil {
		return errors.New("the broker publishes nothing to subscribe to (no notification topic)")
	}
	ls := strings.Split(filter, "/")
	if len(ls) != len(t.levels) {
		return fmt.Errorf("only the notification topic %s may be subscribed to", t)
	}
	for i, l := range t.levels {
		if i != t.deviceLevel && ls[i] != l {
			return fmt.Errorf("only the notification topic %s may be subscribed to", t)
		}
	}
	level := ls[t.deviceLevel]
	switch {
	case s.device != "":
		if level != escapeDevice(s.device) {
			return fmt.Errorf("device %q may subscribe to its own notifications only, on %s", s.device, t.Topic(escapeDevice(s.device)))
		}
	case level == "+":
		if s.principal.DevicePrefix != "" {
			return fmt.Errorf("token %s is limited to devices starting with %q: subscribe to each device's topic, not \"+\"", s.principal.TokenID, s.principal.DevicePrefix)
		}
	default:
		device, ok := unescapeDevice(level)
		if !ok || level == "" {
			return fmt.Errorf("level %q names no device", level)
		}
		if !s.principal.AllowsDevice(device) {
			return fmt.Errorf("token %s is limited to devices starting with %q", s.principal.TokenID, s.principal.DevicePrefix)
		}
	}
	return nil
}

// OnPublish runs before the broker sends PUBACK: the points are durable
// once it returns the packet. A store failure rejects the packet without
// acknowledgement, so the device sends it again. Publish's messages
// (inline client) pass unchanged, to be relayed to subscribers.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
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

// deviceEscaper and deviceUnescaper encode a device as one topic level
// exactly as notify.MQTT.TopicFor does.
var (
	deviceEscaper   = strings.NewReplacer("%", "%25", "/", "%2F", "+", "%2B", "#", "%23")
	deviceUnescaper = strings.NewReplacer("%25", "%", "%2F", "/", "%2B", "+", "%23", "#")
)

func escapeDevice(device string) string { return deviceEscaper.Replace(device) }

// unescapeDevice decodes a topic level; ok is false when level is not the
// encoding of any device.
func unescapeDevice(level string) (string, bool) {
	d := deviceUnescaper.Replace(level)
	return d, escapeDevice(d) == level
}
