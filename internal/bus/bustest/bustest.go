// Package bustest is the conformance suite of the bus contract. Every bus
// backend runs RunConformanceTests with a Harness that builds its bus: membus
// in process, kafkabus and amqpbus against a real broker. Tests that need a
// capability a backend does not declare are skipped, naming the capability.
//
// Every test uses its own topics (see Topic) and consumer groups, so suites
// of several backends, or several runs against one broker, do not interfere.
// Tests wait for events, bounded by a context deadline; they never assert on
// timing.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/bus"
)

// Bus is what a harness builds: a publisher and a subscriber over the same
// bus, closed by the suite.
type Bus interface {
	bus.Publisher
	bus.Subscriber
	Close() error
}

// Config is the bus configuration a test asks for.
type Config struct {
	// MaxAttempts is the number of deliveries after which a message is
	// dead-lettered to bus.DeadLetterTopic(topic).
	MaxAttempts int
	// Capacity bounds the messages a group may hold waiting for a
	// consumer; only read when Capabilities.BackPressure is set. 0 means
	// the backend's default.
	Capacity int
	// FailFast makes a full queue fail Publish with bus.ErrFull instead
	// of blocking; only read when Capabilities.BackPressure is set.
	FailFast bool
}

// Capabilities declares what a backend supports beyond the common contract
// (publish, consume, consumer groups, per-key ordering, at-least-once).
type Capabilities struct {
	// Redelivery: a message whose handler fails is redelivered in place
	// with Attempt incremented, before later messages of its key.
	Redelivery bool
	// DeadLetter: after Config.MaxAttempts failed deliveries a message is
	// published to bus.DeadLetterTopic(topic) with the error headers.
	DeadLetter bool
	// BackPressure: queues are bounded by Config.Capacity; a full queue
	// blocks Publish, or fails it with bus.ErrFull when Config.FailFast.
	BackPressure bool
}

// Harness builds buses for one test.
type Harness interface {
	// MakeBus returns a new bus configured by cfg, with a short
	// redelivery backoff (milliseconds) so redelivery tests run fast.
	MakeBus(ctx context.Context, cfg Config) (Bus, error)
	// Capabilities declares the optional features of the backend.
	Capabilities() Capabilities
	// Close releases the harness's resources.
	Close()
}

// HarnessMaker makes a Harness for one test.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// testTimeout bounds each test: a test that waits longer has failed (a lost
// message), it does not measure speed.
const testTimeout = 30 * time.Second

// RunConformanceTests runs the bus conformance suite against the backend
// built by newHarness.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"AssignsIDs", testAssignsIDs},
		{"Batch", testBatch},
		{"GroupSharing", testGroupSharing},
		{"FanOut", testFanOut},
		{"OrderingPerKey", testOrderingPerKey},
		{"Redelivery", testRedelivery},
		{"DeadLetter", testDeadLetter},
		{"StopMidFlight", testStopMidFlight},
		{"BackPressureFailFast", testBackPressureFailFast},
		{"BackPressureBlock", testBackPressureBlock},
		{"InvalidArguments", testInvalid},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHarness(t.Context(), t)
			if err != nil {
				t.Fatalf("make harness: %v", err)
			}
			t.Cleanup(h.Close)
			tc.run(t, h)
		})
	}
}

var topicSeq atomic.Uint64

// Topic returns a topic name unique to t and to this run: the test name made
// safe for brokers ([A-Za-z0-9._-]), the time and a counter.
func Topic(t *testing.T) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 120 {
		name = name[len(name)-120:]
	}
	return fmt.Sprintf("%s.%d.%d", name, time.Now().UnixNano(), topicSeq.Add(1))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func makeBus(t *testing.T, ctx context.Context, h Harness, cfg Config) Bus {
	t.Helper()
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	b, err := h.MakeBus(ctx, cfg)
	if err != nil {
		t.Fatalf("MakeBus(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// initGroup declares group on topic when the backend can, so that messages
// published before its consumers start are kept for it.
func initGroup(t *testing.T, ctx context.Context, sub bus.Subscriber, topic, group string) {
	t.Helper()
	if in, ok := sub.(bus.Initializer); ok {
		if err := in.Initialize(ctx, topic, group); err != nil {
			t.Fatalf("Initialize(%q, %q): %v", topic, group, err)
		}
	}
}

// subscribe runs sub.Subscribe in a goroutine and returns a function that
// stops it and waits for it to return; the stop also runs at cleanup.
func subscribe(t *testing.T, ctx context.Context, sub bus.Subscriber, topic, group string, h bus.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sub.Subscribe(ctx, topic, group, h); err != nil {
			t.Errorf("Subscribe(%q, %q): %v", topic, group, err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, ctx context.Context, pub bus.Publisher, topic string, msgs ...bus.Message) {
	t.Helper()
	if err := pub.Publish(ctx, topic, msgs...); err != nil {
		t.Fatalf("Publish(%q, %d messages): %v", topic, len(msgs), err)
	}
}

// collector records deliveries and lets a test wait for a condition on them.
type collector struct {
	mu      sync.Mutex
	msgs    []bus.Message
	changed chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{})} }

func (c *collector) add(m bus.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	close(c.changed)
	c.changed = make(chan struct{})
}

// handler records every delivery and acknowledges it.
func (c *collector) handler(_ context.Context, m bus.Message) error {
	c.add(m)
	return nil
}

func (c *collector) snapshot() []bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// waitFor waits until cond holds on the deliveries so far, or fails the test
// when ctx ends first.
func (c *collector) waitFor(t *testing.T, ctx context.Context, what string, cond func([]bus.Message) bool) []bus.Message {
	t.Helper()
	for {
		c.mu.Lock()
		msgs := slices.Clone(c.msgs)
		ch := c.changed
		c.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; got %d deliveries: %v", what, ctx.Err(), len(msgs), ids(msgs))
			return nil
		}
	}
}

// waitN waits for n deliveries.
func (c *collector) waitN(t *testing.T, ctx context.Context, n int) []bus.Message {
	t.Helper()
	return c.waitFor(t, ctx, fmt.Sprintf("%d deliveries", n), func(m []bus.Message) bool { return len(m) >= n })
}

// waitDistinct waits for n distinct message IDs.
func (c *collector) waitDistinct(t *testing.T, ctx context.Context, n int) []bus.Message {
	t.Helper()
	return c.waitFor(t, ctx, fmt.Sprintf("%d distinct messages", n), func(m []bus.Message) bool {
		return len(distinct(m)) >= n
	})
}

// waitID waits for a delivery of message id.
func (c *collector) waitID(t *testing.T, ctx context.Context, id string) []bus.Message {
	t.Helper()
	return c.waitFor(t, ctx, "message "+id, func(m []bus.Message) bool {
		return slices.ContainsFunc(m, func(m bus.Message) bool { return m.ID == id })
	})
}

func ids(msgs []bus.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func distinct(msgs []bus.Message) map[string]int {
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		seen[m.ID]++
	}
	return seen
}

// makeMsgs returns n messages with IDs prefix-0 .. prefix-(n-1), spread over
// keys keys, with the sequence number in the payload.
func makeMsgs(prefix string, n, keys int) []bus.Message {
	msgs := make([]bus.Message, n)
	for i := range msgs {
		msgs[i] = bus.Message{
			ID:      prefix + "-" + strconv.Itoa(i),
			Key:     "key-" + strconv.Itoa(i%keys),
			Payload: []byte(strconv.Itoa(i)),
		}
	}
	return msgs
}

// checkOnce checks that every message of want was delivered exactly once.
func checkOnce(t *testing.T, what string, got, want []bus.Message) {
	t.Helper()
	counts := distinct(got)
	for _, m := range want {
		if counts[m.ID] != 1 {
			t.Errorf("%s: message %s delivered %d times, want 1", what, m.ID, counts[m.ID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d deliveries, want %d", what, len(got), len(want))
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	initGroup(t, ctx, b, topic, topic+"-g")

	payload := []byte("temperature=21.5")
	headers := map[string]string{"content-type": "text/plain", "trace": "abc"}
	publish(t, ctx, b, topic, bus.Message{ID: "m1", Key: "device-1", Payload: payload, Headers: headers, Attempt: 7})
	// The bus must not keep the caller's buffers.
	payload[0] = 'X'
	headers["trace"] = "changed"

	c := newCollector()
	subscribe(t, ctx, b, topic, topic+"-g", c.handler)
	got := c.waitN(t, ctx, 1)
	want := bus.Message{
		ID: "m1", Key: "device-1", Payload: []byte("temperature=21.5"),
		Headers: map[string]string{"content-type": "text/plain", "trace": "abc"},
		Attempt: 1,
	}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("delivered message mismatch (-want +got):\n%s", diff)
	}
}

func testAssignsIDs(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	initGroup(t, ctx, b, topic, topic+"-g")
	publish(t, ctx, b, topic, bus.Message{Key: "k", Payload: []byte("a")}, bus.Message{Key: "k", Payload: []byte("b")})
	c := newCollector()
	subscribe(t, ctx, b, topic, topic+"-g", c.handler)
	got := c.waitN(t, ctx, 2)
	if got[0].ID == "" || got[1].ID == "" || got[0].ID == got[1].ID {
		t.Errorf("messages published without ID got IDs %q and %q, want two distinct non-empty IDs", got[0].ID, got[1].ID)
	}
}

func testBatch(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	initGroup(t, ctx, b, topic, topic+"-g")
	msgs := makeMsgs("batch", 100, 10)
	publish(t, ctx, b, topic, msgs...)

	c := newCollector()
	subscribe(t, ctx, b, topic, topic+"-g", c.handler)
	got := c.waitN(t, ctx, len(msgs))
	checkOnce(t, "batch of 100", got, msgs)
	byID := make(map[string]bus.Message, len(got))
	for _, m := range got {
		byID[m.ID] = m
	}
	for _, m := range msgs {
		if g := byID[m.ID]; g.Key != m.Key || string(g.Payload) != string(m.Payload) {
			t.Errorf("message %s: got key %q payload %q, want key %q payload %q", m.ID, g.Key, g.Payload, m.Key, m.Payload)
		}
	}
}

func testGroupSharing(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)

	c := newCollector()
	var mu sync.Mutex
	perConsumer := make([]int, 3)
	for i := range perConsumer {
		subscribe(t, ctx, b, topic, group, func(ctx context.Context, m bus.Message) error {
			mu.Lock()
			perConsumer[i]++
			mu.Unlock()
			return c.handler(ctx, m)
		})
	}
	msgs := makeMsgs("shared", 300, 30)
	for chunk := range slices.Chunk(msgs, 50) {
		publish(t, ctx, b, topic, chunk...)
	}
	got := c.waitDistinct(t, ctx, len(msgs))
	checkOnce(t, "one group, three consumers", got, msgs)
	mu.Lock()
	t.Logf("deliveries per consumer: %v", perConsumer)
	mu.Unlock()
}

func testFanOut(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	groups := []string{topic + "-a", topic + "-b", topic + "-c"}
	collectors := make([]*collector, len(groups))
	for i, g := range groups {
		initGroup(t, ctx, b, topic, g)
		collectors[i] = newCollector()
		subscribe(t, ctx, b, topic, g, collectors[i].handler)
	}
	msgs := makeMsgs("fan", 50, 5)
	publish(t, ctx, b, topic, msgs...)
	for i, g := range groups {
		got := collectors[i].waitDistinct(t, ctx, len(msgs))
		checkOnce(t, "group "+g, got, msgs)
	}
}

func testOrderingPerKey(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)

	const publishers, keysPer, perKey = 4, 3, 40
	c := newCollector()
	for range 3 {
		subscribe(t, ctx, b, topic, group, c.handler)
	}
	// Each publisher owns its keys and publishes them in sequence, in
	// small batches interleaving its keys, concurrently with the others.
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for seq := 0; seq < perKey; seq += 4 {
				var batch []bus.Message
				for s := seq; s < seq+4; s++ {
					for k := range keysPer {
						key := fmt.Sprintf("p%d-k%d", p, k)
						batch = append(batch, bus.Message{ID: fmt.Sprintf("%s-%d", key, s), Key: key, Payload: []byte(strconv.Itoa(s))})
					}
				}
				if err := b.Publish(ctx, topic, batch...); err != nil {
					t.Errorf("publisher %d: Publish: %v", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := c.waitN(t, ctx, publishers*keysPer*perKey)
	seqs := make(map[string][]int)
	for _, m := range got {
		s, err := strconv.Atoi(string(m.Payload))
		if err != nil {
			t.Fatalf("message %s: payload %q: %v", m.ID, m.Payload, err)
		}
		seqs[m.Key] = append(seqs[m.Key], s)
	}
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	if len(seqs) != publishers*keysPer {
		t.Errorf("got %d keys, want %d", len(seqs), publishers*keysPer)
	}
	for key, got := range seqs {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key %s: delivery order mismatch (-want +got):\n%s", key, diff)
		}
	}
}

type delivery struct {
	ID      string
	Attempt int
}

func deliveries(msgs []bus.Message) []delivery {
	out := make([]delivery, len(msgs))
	for i, m := range msgs {
		out[i] = delivery{m.ID, m.Attempt}
	}
	return out
}

func testRedelivery(t *testing.T, h Harness) {
	if !h.Capabilities().Redelivery {
		t.Skip("backend does not declare capability Redelivery")
	}
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{MaxAttempts: 5})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)

	c := newCollector()
	subscribe(t, ctx, b, topic, group, func(ctx context.Context, m bus.Message) error {
		c.add(m)
		if m.ID == "flaky" && m.Attempt < 3 {
			return fmt.Errorf("flaky handler, attempt %d", m.Attempt)
		}
		return nil
	})
	publish(t, ctx, b, topic, bus.Message{ID: "flaky", Key: "dev"}, bus.Message{ID: "after", Key: "dev"})
	got := c.waitID(t, ctx, "after")
	want := []delivery{{"flaky", 1}, {"flaky", 2}, {"flaky", 3}, {"after", 1}}
	if diff := cmp.Diff(want, deliveries(got)); diff != "" {
		t.Errorf("deliveries of a message failing twice then a later message of its key (-want +got):\n%s", diff)
	}
}

func testDeadLetter(t *testing.T, h Harness) {
	if !h.Capabilities().DeadLetter {
		t.Skip("backend does not declare capability DeadLetter")
	}
	ctx := testContext(t)
	const maxAttempts = 3
	b := makeBus(t, ctx, h, Config{MaxAttempts: maxAttempts})
	topic := Topic(t)
	dlq := bus.DeadLetterTopic(topic)
	initGroup(t, ctx, b, topic, topic+"-g")
	initGroup(t, ctx, b, dlq, topic+"-dlq")

	c := newCollector()
	subscribe(t, ctx, b, topic, topic+"-g", func(ctx context.Context, m bus.Message) error {
		c.add(m)
		if m.ID == "poison" {
			return fmt.Errorf("boom on %s attempt %d", m.ID, m.Attempt)
		}
		return nil
	})
	dead := newCollector()
	subscribe(t, ctx, b, dlq, topic+"-dlq", dead.handler)

	publish(t, ctx, b, topic,
		bus.Message{ID: "poison", Key: "dev", Payload: []byte("bad"), Headers: map[string]string{"origin": "test"}},
		bus.Message{ID: "next", Key: "dev", Payload: []byte("good")},
	)
	got := c.waitID(t, ctx, "next")
	want := []delivery{{"poison", 1}, {"poison", 2}, {"poison", 3}, {"next", 1}}
	if diff := cmp.Diff(want, deliveries(got)); diff != "" {
		t.Errorf("deliveries with MaxAttempts %d (-want +got):\n%s", maxAttempts, diff)
	}
	dl := dead.waitN(t, ctx, 1)[0]
	if dl.ID != "poison" || dl.Key != "dev" || string(dl.Payload) != "bad" {
		t.Errorf("dead letter: got ID %q key %q payload %q, want poison, dev, bad", dl.ID, dl.Key, dl.Payload)
	}
	if got, want := dl.Headers["origin"], "test"; got != want {
		t.Errorf("dead letter header origin: got %q, want %q", got, want)
	}
	if got, want := dl.Headers[bus.HeaderError], "boom on poison attempt 3"; !strings.Contains(got, want) {
		t.Errorf("dead letter header %s: got %q, want it to contain %q", bus.HeaderError, got, want)
	}
	if got := bus.Attempts(dl); got != maxAttempts {
		t.Errorf("dead letter attempts: got %d, want %d", got, maxAttempts)
	}
	if got := dl.Headers[bus.HeaderTopic]; got != topic {
		t.Errorf("dead letter header %s: got %q, want %q", bus.HeaderTopic, got, topic)
	}
}

func testStopMidFlight(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{MaxAttempts: 5})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)
	msgs := makeMsgs("inflight", 5, 1)
	publish(t, ctx, b, topic, msgs...)

	// The first consumer takes the first message and is stopped while
	// handling it: it never acknowledges it.
	started := make(chan struct{})
	var once sync.Once
	stop := subscribe(t, ctx, b, topic, group, func(ctx context.Context, m bus.Message) error {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("first consumer never got a message: %v", ctx.Err())
	}
	stop()

	c := newCollector()
	subscribe(t, ctx, b, topic, group, c.handler)
	got := c.waitDistinct(t, ctx, len(msgs))
	if diff := cmp.Diff(ids(msgs), ids(got)); diff != "" {
		t.Errorf("messages after a consumer stopped mid-flight (-want +got):\n%s", diff)
	}
}

func testBackPressureFailFast(t *testing.T, h Harness) {
	if !h.Capabilities().BackPressure {
		t.Skip("backend does not declare capability BackPressure")
	}
	ctx := testContext(t)
	const capacity = 8
	b := makeBus(t, ctx, h, Config{Capacity: capacity, FailFast: true})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)

	accepted := makeMsgs("accepted", capacity, 1)
	publish(t, ctx, b, topic, accepted...)
	if err := b.Publish(ctx, topic, bus.Message{ID: "rejected-1", Key: "key-0"}); !errors.Is(err, bus.ErrFull) {
		t.Fatalf("Publish to a full queue: got %v, want an error wrapping bus.ErrFull", err)
	}
	if err := b.Publish(ctx, topic, bus.Message{ID: "rejected-2", Key: "key-0"}, bus.Message{ID: "rejected-3", Key: "key-0"}); !errors.Is(err, bus.ErrFull) {
		t.Fatalf("Publish of a batch to a full queue: got %v, want an error wrapping bus.ErrFull", err)
	}

	c := newCollector()
	subscribe(t, ctx, b, topic, group, c.handler)
	c.waitN(t, ctx, capacity)
	// Once the queue drained, publishing works again; all on one key, so
	// the end marker arrives last and everything before it is counted.
	publish(t, ctx, b, topic, bus.Message{ID: "end", Key: "key-0"})
	got := c.waitID(t, ctx, "end")
	want := append(ids(accepted), "end")
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("deliveries after ErrFull (-want +got):\n%s", diff)
	}
}

func testBackPressureBlock(t *testing.T, h Harness) {
	if !h.Capabilities().BackPressure {
		t.Skip("backend does not declare capability BackPressure")
	}
	ctx := testContext(t)
	const capacity = 8
	b := makeBus(t, ctx, h, Config{Capacity: capacity})
	topic := Topic(t)
	group := topic + "-g"
	initGroup(t, ctx, b, topic, group)

	first := makeMsgs("first", capacity, 1)
	publish(t, ctx, b, topic, first...)
	// A full queue blocks Publish until its context ends; the message is
	// not accepted.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := b.Publish(short, topic, bus.Message{ID: "timed-out", Key: "key-0"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish to a full queue with a deadline: got %v, want an error wrapping context.DeadlineExceeded", err)
	}

	// A publisher blocked on the full queue proceeds as consumers drain.
	more := makeMsgs("more", 3*capacity, 1)
	published := make(chan error, 1)
	go func() { published <- b.Publish(ctx, topic, more...) }()
	c := newCollector()
	subscribe(t, ctx, b, topic, group, c.handler)
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("blocked Publish of %d messages: %v", len(more), err)
		}
	case <-ctx.Done():
		t.Fatalf("blocked Publish never completed: %v", ctx.Err())
	}
	publish(t, ctx, b, topic, bus.Message{ID: "end", Key: "key-0"})
	got := c.waitID(t, ctx, "end")
	want := append(append(ids(first), ids(more)...), "end")
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("deliveries with a blocked publisher (-want +got):\n%s", diff)
	}
}

func testInvalid(t *testing.T, h Harness) {
	ctx := testContext(t)
	b := makeBus(t, ctx, h, Config{})
	topic := Topic(t)
	noop := func(context.Context, bus.Message) error { return nil }
	tests := []struct {
		name string
		call func() error
	}{
		{"publish empty topic", func() error { return b.Publish(ctx, "", bus.Message{ID: "x"}) }},
		{"subscribe empty topic", func() error { return b.Subscribe(ctx, "", "g", noop) }},
		{"subscribe empty group", func() error { return b.Subscribe(ctx, topic, "", noop) }},
		{"subscribe nil handler", func() error { return b.Subscribe(ctx, topic, "g", nil) }},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, bus.ErrInvalid) {
			t.Errorf("%s: got %v, want an error wrapping bus.ErrInvalid", tc.name, err)
		}
	}
}

func testClose(t *testing.T, h Harness) {
	ctx := testContext(t)
	b, err := h.MakeBus(ctx, Config{MaxAttempts: 5})
	if err != nil {
		t.Fatalf("MakeBus: %v", err)
	}
	topic := Topic(t)
	initGroup(t, ctx, b, topic, topic+"-g")
	c := newCollector()
	returned := make(chan error, 1)
	go func() { returned <- b.Subscribe(ctx, topic, topic+"-g", c.handler) }()
	publish(t, ctx, b, topic, bus.Message{ID: "before-close", Key: "k"})
	c.waitN(t, ctx, 1)

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("Subscribe after Close of the bus: got %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatalf("Subscribe did not return after Close: %v", ctx.Err())
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if err := b.Publish(ctx, topic, bus.Message{ID: "after-close"}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close: got %v, want an error wrapping bus.ErrClosed", err)
	}
	if err := b.Subscribe(ctx, topic, topic+"-g", c.handler); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want an error wrapping bus.ErrClosed", err)
	}
}
