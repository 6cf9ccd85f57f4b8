// Package notify delivers the transactional outbox: a Relay claims due
// outbox messages, delivers anomaly notifications to a webhook and/or
// publishes them on an MQTT topic per device (and, when configured,
// publishes every message to the bus), marks them delivered, and
// reschedules failures with exponential backoff.
//
// Delivery is at least once: a crash between delivery and marking re-sends
// the message. Each request carries the message's deterministic ID in
// X-Vigil-Event-Id, so receivers deduplicate on it (MQTT subscribers on the
// "id" field of the payload).
//
// A message has one delivered flag for all its sinks: it is marked
// delivered only once every configured sink (webhook, MQTT, bus) accepted
// it. A sink that accepted it is not sent it again during the immediate
// retries of the same claim, but when the message is rescheduled (another
// sink still failing), the next claim delivers it to every sink again, so
// a receiver may get a message it had already accepted.
//
// # Webhook requests
//
// POST to the configured URL, body the outbox payload (for topic "anomalies"
// an engine.Notification as JSON), with the headers:
//
//	Content-Type: application/json
//	X-Vigil-Event-Id: <outbox message ID>
//	X-Vigil-Topic: <topic>
//	X-Vigil-Timestamp: <Unix seconds of the attempt>
//	X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body keyed with the secret>
//
// A 2xx answer is a delivery; anything else (or no answer) is a failure,
// retried: a few times at once with exponential backoff, then at the
// message's next due time, later and later (capped), never dropped.
//
// # MQTT messages
//
// The same payload, published with QoS 1, not retained, on the MQTT topic
// template with its "{device}" level replaced by the message key (the
// device; the characters "%", "/", "+" and "#" percent-encoded so that a
// device is always one topic level). The broker's PUBACK is a delivery;
// anything else, including a broker that is away, is a failure, retried
// like a webhook failure.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/bus"
)

// Webhook request headers.
const (
	HeaderSignature = "X-Vigil-Signature"
	HeaderEventID   = "X-Vigil-Event-Id"
	HeaderTimestamp = "X-Vigil-Timestamp"
	HeaderTopic     = "X-Vigil-Topic"
)

// ErrDelivery is wrapped by the errors of a failed webhook delivery.
var ErrDelivery = errors.New("webhook delivery failed")

// Sign returns the X-Vigil-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is the X-Vigil-Signature of body under
// secret, in constant time.
func Verify(secret, body []byte, signature string) bool {
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Webhook posts messages to one URL.
type Webhook struct {
	URL    string
	Secret []byte
	// Client sends the requests; nil means a client with a 10 s timeout.
	Client *http.Client
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Deliver posts m once. A non-2xx answer is an error wrapping ErrDelivery;
// a 4xx other than 408 and 429 is also marked permanent for backoff.Retry
// (retrying at once cannot help; the message is still rescheduled).
func (w *Webhook) Deliver(ctx context.Context, m appdb.OutboxMessage, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return backoff.Permanent(fmt.Errorf("webhook request for message %s: %w: %w", m.ID, ErrDelivery, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook")
	req.Header.Set(HeaderEventID, m.ID)
	req.Header.Set(HeaderTopic, m.Topic)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.Secret, m.Payload))
	c := w.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("post message %s: %w: %w", m.ID, ErrDelivery, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("post message %s: %w: status %d", m.ID, ErrDelivery, resp.StatusCode)
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return backoff.Permanent(err)
	}
	return err
}

// MQTTPublisher publishes to an MQTT broker; *mqttingest.Publisher
// implements it. Publish sends payload on topic with QoS 1, not retained,
// and returns nil only once the broker acknowledged it; it must be safe
// for concurrent use and must not keep payload after it returns.
type MQTTPublisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// MQTT publishes messages on a topic per device.
type MQTT struct {
	Publisher MQTTPublisher
	// Topic is the topic template, with one level "{device}", e.g.
	// "vigil/anomalies/{device}".
	Topic string
}

// deviceLevel escapes the characters that would make a device more or
// less than one literal topic level.
var deviceLevel = strings.NewReplacer("%", "%25", "/", "%2F", "+", "%2B", "#", "%23")

// TopicFor returns the topic of the notifications about device.
func (q *MQTT) TopicFor(device string) string {
	return strings.Replace(q.Topic, "{device}", deviceLevel.Replace(device), 1)
}

// Deliver publishes m once on the topic of its key.
func (q *MQTT) Deliver(ctx context.Context, m appdb.OutboxMessage) error {
	topic := q.TopicFor(m.Key)
	if err := q.Publisher.Publish(ctx, topic, m.Payload); err != nil {
		return fmt.Errorf("mqtt publish message %s to %s: %w", m.ID, topic, err)
	}
	return nil
}

// Options configure a Relay. Zero fields take the defaults in brackets.
type Options struct {
	// Webhook receives the messages of WebhookTopic; nil sends none.
	Webhook *Webhook
	// MQTT publishes the messages of WebhookTopic on MQTT; nil publishes
	// none.
	MQTT *MQTT
	// WebhookTopic is the topic delivered to the webhook and MQTT
	// ["anomalies"].
	WebhookTopic string
	// Publisher, when set, receives every message on its topic (ID, Key
	// and Payload kept).
	Publisher bus.Publisher
	// PollInterval is the wait between claims when the outbox is drained
	// [1s].
	PollInterval time.Duration
	// Batch is the number of messages claimed at once [100].
	Batch int
	// Lease is how long a claimed message is reserved [2m]; it must exceed
	// the time to deliver a batch.
	Lease time.Duration
	// Tries is the number of immediate attempts of a claimed message,
	// with exponential backoff from RetryInitial [3, 200ms].
	Tries        int
	RetryInitial time.Duration
	// RescheduleInitial and RescheduleMax bound the exponential delay
	// before the next claim of a failed message, growing with its
	// attempts [5s, 10m].
	RescheduleInitial, RescheduleMax time.Duration
	// Keep is how long delivered messages are kept before deletion [24h].
	Keep time.Duration
	// Logger receives delivery failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives vigil_notify_deliveries_total{result}; nil
	// registers none.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.WebhookTopic == "" {
		o.WebhookTopic = "anomalies"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = 200 * time.Millisecond
	}
	if o.RescheduleInitial <= 0 {
		o.RescheduleInitial = 5 * time.Second
	}
	if o.RescheduleMax <= 0 {
		o.RescheduleMax = 10 * time.Minute
	}
	if o.Keep <= 0 {
		o.Keep = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Relay delivers the outbox. Run several relays safely: claims lease
// messages, so no two relays send the same message at once.
type Relay struct {
	repo       appdb.OutboxRepository
	opts       Options
	deliveries *prometheus.CounterVec
}

// NewRelay returns a relay over repo. It starts no goroutines. It fails
// only when its metrics cannot be registered.
func NewRelay(repo appdb.OutboxRepository, opts Options) (*Relay, error) {
	r := &Relay{repo: repo, opts: opts.withDefaults(), deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_notify_deliveries_total",
		Help: "Outbox message deliveries, by result (delivered, or failed and rescheduled).",
	}, []string{"result"})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.deliveries); err != nil {
			return nil, fmt.Errorf("register notify metrics: %w", err)
		}
	}
	return r, nil
}

// Run relays until ctx is cancelled, then returns nil after the batch in
// progress.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.opts.PollInterval)
	defer t.Stop()
	lastClean := time.Time{}
	for {
		n, err := r.RelayOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.opts.Logger.Warn("outbox relay failed; will retry", "err", err)
		}
		if now := r.opts.Now(); now.Sub(lastClean) >= time.Hour {
			if _, err := r.repo.DeleteDelivered(ctx, now.Add(-r.opts.Keep)); err != nil && ctx.Err() == nil {
				r.opts.Logger.Warn("deleting delivered outbox messages failed", "err", err)
			}
			lastClean = now
		}
		if n == r.opts.Batch && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RelayOnce claims one batch of due messages and delivers them. It returns
// the number claimed; failed deliveries are rescheduled, not returned as
// errors.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	ms, err := r.repo.Claim(ctx, r.opts.Batch, r.opts.Lease)
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	var errs []error
	for _, m := range ms {
		if err := r.relay(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ms), errors.Join(errs...)
}

func (r *Relay) relay(ctx context.Context, m appdb.OutboxMessage) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.opts.RetryInitial
	var done accepted
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, r.send(ctx, m, &done) },
		backoff.WithBackOff(b), backoff.WithMaxTries(uint(r.opts.Tries)), backoff.WithMaxElapsedTime(r.opts.Lease/2))
	if err == nil {
		if err := r.repo.MarkDelivered(ctx, m.ID); err != nil {
			return fmt.Errorf("mark outbox message %s delivered: %w", m.ID, err)
		}
		r.deliveries.WithLabelValues("delivered").Inc()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.deliveries.WithLabelValues("failed").Inc()
	r.opts.Logger.Warn("outbox delivery failed; rescheduled", "id", m.ID, "topic", m.Topic, "attempts", m.Attempts, "err", err)
	m.LastError = err.Error()
	m.NextAttemptAt = r.opts.Now().Add(r.rescheduleDelay(m.Attempts))
	if _, uerr := r.repo.Update(ctx, m); uerr != nil && !errors.Is(uerr, appdb.ErrConflict) {
		// Not fatal: the lease expires and the message is claimed again.
		return fmt.Errorf("reschedule outbox message %s: %w", m.ID, uerr)
	}
	return nil
}

// rescheduleDelay is the exponential backoff (with jitter) after attempts
// failed claims.
func (r *Relay) rescheduleDelay(attempts int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.opts.RescheduleInitial
	b.MaxInterval = r.opts.RescheduleMax
	d := b.NextBackOff()
	for i := 1; i < min(attempts, 64); i++ {
		d = b.NextBackOff()
	}
	return d
}

// accepted records the sinks that accepted a message during one claim.
type accepted struct{ webhook, mqtt, bus bool }

// send delivers m to every sink that has not accepted it yet, each tried
// even when another fails. The error is permanent (no immediate retry)
// only when every failure is.
func (r *Relay) send(ctx context.Context, m appdb.OutboxMessage, done *accepted) error {
	var errs []error
	if r.opts.Webhook != nil && m.Topic == r.opts.WebhookTopic && !done.webhook {
		if err := r.opts.Webhook.Deliver(ctx, m, r.opts.Now()); err != nil {
			errs = append(errs, err)
		} else {
			done.webhook = true
		}
	}
	if r.opts.MQTT != nil && m.Topic == r.opts.WebhookTopic && !done.mqtt {
		if err := r.opts.MQTT.Deliver(ctx, m); err != nil {
			errs = append(errs, err)
		} else {
			done.mqtt = true
		}
	}
	if r.opts.Publisher != nil && !done.bus {
		if err := r.opts.Publisher.Publish(ctx, m.Topic, bus.Message{ID: m.ID, Key: m.Key, Payload: m.Payload}); err != nil {
			errs = append(errs, fmt.Errorf("publish outbox message %s to %s: %w", m.ID, m.Topic, err))
		} else {
			done.bus = true
		}
	}
	return joinFailures(errs)
}

// joinFailures joins errs, permanent only when each of them is.
func joinFailures(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	permanent := true
	for i, err := range errs {
		var p *backoff.PermanentError
		if errors.As(err, &p) {
			errs[i] = p.Unwrap()
		} else {
			permanent = false
		}
	}
	if permanent {
		return backoff.Permanent(errors.Join(errs...))
	}
	return errors.Join(errs...)
}
