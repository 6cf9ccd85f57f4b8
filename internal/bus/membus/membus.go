// Package membus is the in-process implementation of the bus contract: bounded
// queues with back-pressure, consumer groups, per-key ordering by partition,
// in-place redelivery with backoff and dead-lettering.
//
// Each topic holds, for every consumer group, Partitions FIFO queues; a
// message goes to the queue picked by the hash of its Key. A consumer claims a
// partition, handles its head message and releases it, so a partition is
// handled by one consumer at a time and in order, while different partitions
// are handled in parallel by the consumers of the group.
//
// The bus keeps messages in memory only: they do not survive the process. In
// embedded mode Vigil makes a reading durable (TSDB write) before publishing
// it, so the bus only carries work that can be recomputed.
//
// Messages published to a topic that has no group yet are kept (within
// Capacity) and handed to the first group created on the topic; later groups
// receive the messages published after they were created. Declare groups
// with Initialize before publishing to give each group every message.
//
// Back-pressure is per group: a group whose queue holds Capacity messages
// blocks (or fails, in FailFast mode) every publisher of the topic, so the
// slowest group sets the pace. Dead-lettering always waits for space in the
// dead-letter topic, holding the failed message's partition meanwhile: give
// dead-letter topics a consumer, or they fill up after Capacity messages.
//
// Handlers run on the goroutine of Subscribe (or its workers): a panicking
// handler crashes the process, as in any goroutine; wrap handlers with
// resilience.Recover.
package membus

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-iot/vigil/internal/bus"
)

// Mode is what Publish does when a queue is full.
type Mode int

// Back-pressure modes.
const (
	// Block makes Publish wait for space, for ctx, or for Close.
	Block Mode = iota
	// FailFast makes Publish return an error wrapping bus.ErrFull.
	FailFast
)

// Options configures a Bus. The zero value is valid: every zero field takes
// its default.
type Options struct {
	// Capacity is the number of messages a group of a topic may hold
	// waiting for a consumer (messages being handled are not counted).
	// Default 1024.
	Capacity int
	// Partitions is the number of ordered queues per group and topic, that
	// is the maximum parallelism of a group. Default 16.
	Partitions int
	// Mode is the back-pressure mode. Default Block.
	Mode Mode
	// MaxAttempts is the number of deliveries of a message before it is
	// dead-lettered. Default 5.
	MaxAttempts int
	// Backoff returns the wait before redelivering a message that failed
	// failures times (failures >= 1). Default: 100ms doubled per failure,
	// capped at 10s.
	Backoff func(failures int) time.Duration
	// DeadLetterTopic names the dead-letter topic of a topic. Default
	// bus.DeadLetterTopic.
	DeadLetterTopic func(topic string) string
	// Workers is the number of messages one Subscribe call handles
	// concurrently (for different partitions). Default 1.
	Workers int
}

func (o Options) withDefaults() Options {
	if o.Capacity <= 0 {
		o.Capacity = 1024
	}
	if o.Partitions <= 0 {
		o.Partitions = 16
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.DeadLetterTopic == nil {
		o.DeadLetterTopic = bus.DeadLetterTopic
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	return o
}

// DefaultBackoff is the default redelivery backoff: 100ms doubled per
// failure, capped at 10s.
func DefaultBackoff(failures int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < failures && d < 10*time.Second; i++ {
		d *= 2
	}
	return min(d, 10*time.Second)
}

// Bus is an in-process bus. It is safe for concurrent use.
type Bus struct {
	opts Options

	closeCtx context.Context // cancelled by Close
	cancel   context.CancelFunc

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
	seq    uint64
	subs   sync.WaitGroup
}

var (
	_ bus.Publisher   = (*Bus)(nil)
	_ bus.Subscriber  = (*Bus)(nil)
	_ bus.Initializer = (*Bus)(nil)
)

// New returns an empty bus. It starts no goroutines: consumers run inside
// Subscribe.
func New(opts Options) *Bus {
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{
		opts:     opts.withDefaults(),
		closeCtx: ctx,
		cancel:   cancel,
		topics:   make(map[string]*topic),
	}
}

type entry struct {
	msg      bus.Message
	failures int
}

type partition struct {
	q    []entry // q[0] is the head
	busy bool    // claimed by a consumer
}

type group struct {
	name   string
	parts  []partition
	queued int // messages in parts, excluding claimed ones
	next   int // partition where the next claim search starts
}

func (g *group) push(p int, m bus.Message) {
	g.parts[p].q = append(g.parts[p].q, entry{msg: m})
	g.queued++
}

type topic struct {
	name string

	mu     sync.Mutex
	groups map[string]*group
	orphan *group // messages published while the topic had no group
	rr     int    // partition for the next message without key

	// Channels closed to wake waiters, replaced after; the flags say
	// whether anyone waits, so that signalling costs nothing otherwise.
	space, avail             chan struct{}
	spaceWaited, availWaited bool
}

// waitSpace returns the channel closed at the next signalSpace. t.mu must
// be held.
func (t *topic) waitSpace() <-chan struct{} {
	t.spaceWaited = true
	return t.space
}

// signalSpace wakes publishers waiting for space. t.mu must be held.
func (t *topic) signalSpace() {
	if t.spaceWaited {
		close(t.space)
		t.space = make(chan struct{})
		t.spaceWaited = false
	}
}

// waitAvail returns the channel closed at the next signalAvail. t.mu must
// be held.
func (t *topic) waitAvail() <-chan struct{} {
	t.availWaited = true
	return t.avail
}

// signalAvail wakes consumers waiting for a message. t.mu must be held.
func (t *topic) signalAvail() {
	if t.availWaited {
		close(t.avail)
		t.avail = make(chan struct{})
		t.availWaited = false
	}
}

func (b *Bus) topic(name string) (*topic, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	t, ok := b.topics[name]
	if !ok {
		t = &topic{
			name:   name,
			groups: make(map[string]*group),
			space:  make(chan struct{}),
			avail:  make(chan struct{}),
		}
		b.topics[name] = t
	}
	return t, nil
}

func (b *Bus) newGroup(name string) *group {
	return &group{name: name, parts: make([]partition, b.opts.Partitions)}
}

// group returns the group named name of t, creating it (and handing it the
// orphan messages) if needed. t.mu must be held.
func (b *Bus) group(t *topic, name string) *group {
	g, ok := t.groups[name]
	if ok {
		return g
	}
	if t.orphan != nil && len(t.groups) == 0 {
		g, t.orphan = t.orphan, nil
		g.name = name
	} else {
		g = b.newGroup(name)
	}
	t.groups[name] = g
	return g
}

// Initialize declares group on topic: from now on every message published to
// topic is kept for group until it is consumed.
func (b *Bus) Initialize(ctx context.Context, topicName, group string) error {
	if topicName == "" || group == "" {
		return fmt.Errorf("initialize topic %q group %q: %w", topicName, group, bus.ErrInvalid)
	}
	t, err := b.topic(topicName)
	if err != nil {
		return fmt.Errorf("initialize topic %q group %q: %w", topicName, group, err)
	}
	t.mu.Lock()
	b.group(t, group)
	t.mu.Unlock()
	return nil
}

// Publish enqueues msgs on topic for every group of the topic. When a group's
// queue is full it blocks (Block) or returns an error wrapping bus.ErrFull
// (FailFast); on error, the messages before the one that failed were
// accepted, and the error says how many.
func (b *Bus) Publish(ctx context.Context, topicName string, msgs ...bus.Message) error {
	if topicName == "" {
		return fmt.Errorf("publish to topic %q: %w", topicName, bus.ErrInvalid)
	}
	t, err := b.topic(topicName)
	if err != nil {
		return fmt.Errorf("publish to topic %q: %w", topicName, err)
	}
	for i, m := range msgs {
		if err := b.enqueue(ctx, t, m, b.opts.Mode); err != nil {
			return fmt.Errorf("publish to topic %q: %d of %d messages accepted: %w", topicName, i, len(msgs), err)
		}
	}
	return nil
}

func (b *Bus) nextID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return "membus-" + strconv.FormatUint(b.seq, 10)
}

func (b *Bus) enqueue(ctx context.Context, t *topic, m bus.Message, mode Mode) error {
	// Copy what the caller owns; the copy is shared, read-only, by groups.
	m.Payload = append([]byte(nil), m.Payload...)
	m.Headers = maps.Clone(m.Headers)
	m.Attempt = 0
	if m.ID == "" {
		m.ID = b.nextID()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b.closeCtx.Err() != nil {
			return bus.ErrClosed
		}
		t.mu.Lock()
		if len(t.groups) == 0 && t.orphan == nil {
			t.orphan = b.newGroup("")
		}
		full := len(t.groups) == 0 && t.orphan.queued >= b.opts.Capacity
		for _, g := range t.groups {
			if g.queued >= b.opts.Capacity {
				full = true
				break
			}
		}
		if !full {
			p := b.partitionOf(t, m.Key)
			if len(t.groups) == 0 {
				t.orphan.push(p, m)
			}
			for _, g := range t.groups {
				g.push(p, m)
			}
			t.signalAvail()
			t.mu.Unlock()
			return nil
		}
		if mode == FailFast {
			t.mu.Unlock()
			return fmt.Errorf("message %q: %w (capacity %d)", m.ID, bus.ErrFull, b.opts.Capacity)
		}
		space := t.waitSpace()
		t.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.closeCtx.Done():
			return bus.ErrClosed
		}
	}
}

// partitionOf picks the partition of key. t.mu must be held.
func (b *Bus) partitionOf(t *topic, key string) int {
	if key == "" {
		t.rr = (t.rr + 1) % b.opts.Partitions
		return t.rr
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(b.opts.Partitions))
}

// Len returns the number of messages group of topic holds waiting for a
// consumer (0 for an unknown topic or group). It is meant for metrics.
func (b *Bus) Len(topicName, group string) int {
	b.mu.Lock()
	t, ok := b.topics[topicName]
	b.mu.Unlock()
	if !ok {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.groups[group]; ok {
		return g.queued
	}
	return 0
}

// Subscribe joins group on topic and handles its messages with Workers
// concurrent calls of handler until ctx is cancelled or the bus is closed;
// then it cancels the handlers' context, waits for them and returns nil.
// Unacknowledged messages go back to the head of their partition.
func (b *Bus) Subscribe(ctx context.Context, topicName, group string, handler bus.Handler) error {
	if topicName == "" || group == "" || handler == nil {
		return fmt.Errorf("subscribe to topic %q group %q: %w", topicName, group, bus.ErrInvalid)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("subscribe to topic %q group %q: %w", topicName, group, bus.ErrClosed)
	}
	b.subs.Add(1)
	b.mu.Unlock()
	defer b.subs.Done()

	t, err := b.topic(topicName)
	if err != nil {
		return fmt.Errorf("subscribe to topic %q group %q: %w", topicName, group, err)
	}
	t.mu.Lock()
	g := b.group(t, group)
	t.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.closeCtx, cancel)
	defer stop()

	var wg sync.WaitGroup
	for range b.opts.Workers - 1 {
		wg.Go(func() { b.consume(ctx, t, g, handler) })
	}
	b.consume(ctx, t, g, handler)
	wg.Wait()
	return nil
}

// consume claims partitions of g and handles their head messages until ctx
// is done.
func (b *Bus) consume(ctx context.Context, t *topic, g *group, h bus.Handler) {
	for {
		t.mu.Lock()
		p := -1
		n := len(g.parts)
		for i := range n {
			j := (g.next + i) % n
			if !g.parts[j].busy && len(g.parts[j].q) > 0 {
				p = j
				break
			}
		}
		if p < 0 {
			avail := t.waitAvail()
			t.mu.Unlock()
			select {
			case <-avail:
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			t.mu.Unlock()
			return
		}
		g.next = (p + 1) % n
		part := &g.parts[p]
		part.busy = true
		e := part.q[0]
		part.q[0] = entry{}
		part.q = part.q[1:]
		g.queued--
		t.signalSpace()
		t.mu.Unlock()

		b.handle(ctx, t, g, p, e, h)
	}
}

// handle delivers e until it is acknowledged, dead-lettered or interrupted,
// then releases partition p.
func (b *Bus) handle(ctx context.Context, t *topic, g *group, p int, e entry, h bus.Handler) {
	acked := false
	defer func() {
		t.mu.Lock()
		part := &g.parts[p]
		if !acked {
			part.q = append([]entry{e}, part.q...)
			g.queued++
		}
		part.busy = false
		t.signalAvail()
		t.mu.Unlock()
	}()
	for {
		msg := e.msg
		msg.Attempt = e.failures + 1
		err := h(ctx, msg)
		if err == nil {
			acked = true
			return
		}
		if ctx.Err() != nil {
			// Interrupted by the stop of the subscription: not a failure
			// of the message.
			return
		}
		e.failures++
		if e.failures >= b.opts.MaxAttempts {
			if b.deadLetter(ctx, t.name, e, err) == nil {
				acked = true
			}
			return
		}
		timer := time.NewTimer(b.opts.Backoff(e.failures))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

func (b *Bus) deadLetter(ctx context.Context, topicName string, e entry, lastErr error) error {
	m := e.msg
	hdr := make(map[string]string, len(m.Headers)+3)
	maps.Copy(hdr, m.Headers)
	hdr[bus.HeaderError] = lastErr.Error()
	hdr[bus.HeaderAttempts] = strconv.Itoa(e.failures)
	if _, ok := hdr[bus.HeaderTopic]; !ok {
		hdr[bus.HeaderTopic] = topicName
	}
	m.Headers = hdr
	dlq := b.opts.DeadLetterTopic(topicName)
	t, err := b.topic(dlq)
	if err == nil {
		// Dead-lettering waits for space even in FailFast mode: failing
		// would only redeliver the message at once, in a loop.
		err = b.enqueue(ctx, t, m, Block)
	}
	if err != nil {
		return fmt.Errorf("dead-letter message %q to topic %q: %w", m.ID, dlq, err)
	}
	return nil
}

// Close stops the bus: Publish and Subscribe fail with bus.ErrClosed, blocked
// publishers return, running subscriptions stop (their unacknowledged
// messages stay queued) and Close waits for them to return. It is idempotent.
// It must not be called from a handler.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.subs.Wait()
	return nil
}
