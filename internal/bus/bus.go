// Package bus defines Vigil's message stream: two small interfaces, Publisher
// and Subscriber, in the style of Watermill, with consumer groups, per-key
// ordering, at-least-once delivery, redelivery with backoff and dead-lettering.
//
// Backends live in subpackages named <tech>bus (membus in process; kafkabus,
// amqpbus against real brokers). Every backend runs the conformance suite in
// package bustest. Resilience concerns that are not part of delivery itself
// (recover from panics, poison messages, retry of a handler's own calls) are
// handler middleware, written once in package resilience.
//
// # Contract
//
// Publish: Publish(ctx, topic, msgs...) sends a batch. When it returns nil,
// every message of the batch has been accepted by the bus: enqueued (in
// process) or acknowledged by the broker. When it returns an error, a prefix
// of the batch may have been accepted; publishing the whole batch again is
// safe because consumers deduplicate by Message.ID (or are idempotent). A bus
// never drops an accepted message to make room: when its queues are full,
// Publish blocks until there is space or ctx is done, or fails with ErrFull,
// as the backend is configured. Publish does not keep references to the
// caller's Payload or Headers after it returns.
//
// Consumer groups: Subscribe(ctx, topic, group, handler) joins group on topic.
// Within a group each message is handled by one consumer at a time (shared
// work); every group receives every message published after the group was
// initialised (fan-out). Subscribe may be called several times, from several
// processes, for the same group: that is how consumption scales out.
//
// Ordering: messages with the same non-empty Key are handled in publish order,
// one at a time, across all the consumers of a group; messages with different
// keys are handled in parallel. A failed message is redelivered in place:
// later messages with its key wait for it (head-of-line blocking per key is
// the price of ordering). Messages with an empty Key have no order.
//
// At-least-once: a message is acknowledged when its handler returns nil and
// only then. A handler that returns an error causes a redelivery of the same
// message, with Attempt incremented, after a backoff. After the configured
// number of attempts the message is dead-lettered: published to the topic
// DeadLetterTopic(topic) (or a configured one) with its ID, Key, Payload and
// Headers preserved, plus HeaderError (the last error), HeaderAttempts and
// HeaderTopic; then it is acknowledged. A message whose handler did not return
// nil before its consumer stopped is redelivered to another consumer of the
// group. Handlers must therefore be idempotent; Message.ID is stable across
// redeliveries for deduplication.
//
// Concurrency: Publisher and Subscriber implementations are safe for
// concurrent use. A handler may be called concurrently for messages of
// different keys. Handlers must treat Payload and Headers as read-only: the
// same bytes may be delivered to several groups.
//
// Stopping: Subscribe blocks until ctx is cancelled or the bus is closed. It
// then cancels the context passed to running handlers, waits for them to
// return, and returns nil; messages they did not acknowledge stay in the bus
// for the next consumer. Close makes Publish and Subscribe fail with
// ErrClosed, wakes blocked publishers, stops running subscriptions as above
// and is idempotent. Close must not be called from a handler.
package bus

import (
	"context"
	"errors"
	"strconv"
)

// Error kinds. Backends wrap them; callers test with errors.Is.
var (
	// ErrFull: the bus's queue for a topic is full and the bus is configured
	// to fail fast instead of blocking. Nothing was dropped: the message that
	// got ErrFull was not accepted and may be published again later.
	ErrFull = errors.New("bus queue full")
	// ErrClosed: the bus has been closed.
	ErrClosed = errors.New("bus closed")
	// ErrInvalid: an argument is malformed (empty topic or group, nil
	// handler).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the broker cannot be reached; the operation may be
	// retried.
	ErrUnavailable = errors.New("bus unavailable")
)

// Headers set by the bus on dead-lettered messages.
const (
	// HeaderError holds the error returned by the last failed delivery.
	HeaderError = "vigil-error"
	// HeaderAttempts holds the number of failed deliveries, in decimal.
	HeaderAttempts = "vigil-attempts"
	// HeaderTopic holds the topic the message was first published to.
	HeaderTopic = "vigil-topic"
)

// DeadLetterSuffix is appended to a topic to name its default dead-letter
// topic.
const DeadLetterSuffix = ".dlq"

// DeadLetterTopic returns the default dead-letter topic of topic.
func DeadLetterTopic(topic string) string { return topic + DeadLetterSuffix }

// Message is one message of the stream.
type Message struct {
	// ID identifies the message for deduplication. It is stable across
	// redeliveries and dead-lettering. A backend assigns a unique ID to a
	// message published with an empty one.
	ID string
	// Key is the partition key (a device, a series): messages with the same
	// key are delivered in order.
	Key string
	// Payload is the message body. Handlers must not modify it.
	Payload []byte
	// Headers are string metadata. Handlers must not modify the map.
	Headers map[string]string
	// Attempt is the delivery attempt, starting at 1, set by the bus on
	// delivery and ignored on publish. It counts the deliveries that ended
	// in a handler error, plus one; a delivery cut short by the stop of its
	// consumer is not a failure. Backends that cannot carry the count from
	// one consumer to the next (a restarted Kafka consumer) may restart it
	// at 1 after a consumer stops.
	Attempt int
}

// Handler handles one message. Returning nil acknowledges it; returning an
// error asks for a redelivery. Handlers must honour ctx: it is cancelled when
// the subscription stops.
type Handler func(ctx context.Context, msg Message) error

// Middleware wraps a Handler with behaviour such as recovery from panics,
// retries or poison-message routing.
type Middleware func(Handler) Handler

// Chain returns h wrapped by mws; the first middleware is the outermost: it
// sees the message first and the error last.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Publisher publishes messages to topics. See the package documentation for
// the contract.
type Publisher interface {
	// Publish sends msgs to topic. When it returns nil every message has
	// been accepted by the bus. Errors wrap ErrFull, ErrClosed, ErrInvalid,
	// ErrUnavailable or the context's error.
	Publish(ctx context.Context, topic string, msgs ...Message) error
}

// Subscriber consumes topics in consumer groups. See the package
// documentation for the contract.
type Subscriber interface {
	// Subscribe joins group on topic and calls handler for its messages
	// until ctx is cancelled or the bus is closed; it then waits for
	// running handlers and returns nil. It returns an error wrapping
	// ErrInvalid or ErrClosed when the subscription cannot start, or
	// ErrUnavailable when the broker is lost.
	Subscribe(ctx context.Context, topic, group string, handler Handler) error
}

// Initializer is implemented by subscribers that can declare a consumer
// group ahead of its first Subscribe. After Initialize returns nil, every
// message published to topic is kept for group until it is consumed, even
// while no consumer of the group runs. Declaring groups before publishers
// start is how an application makes sure no group misses a message.
type Initializer interface {
	Initialize(ctx context.Context, topic, group string) error
}

// Attempts parses HeaderAttempts of a dead-lettered message; it returns 0
// when the header is missing or malformed.
func Attempts(msg Message) int {
	n, err := strconv.Atoi(msg.Headers[HeaderAttempts])
	if err != nil {
		return 0
	}
	return n
}
