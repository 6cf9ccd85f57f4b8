package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/bus/membus"
	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// recorder records deliveries (id, attempt) and signals each one.
type recorder struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 100)} }

func (r *recorder) add(m bus.Message) {
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf("%s#%d", m.ID, m.Attempt))
	r.mu.Unlock()
	r.ch <- m.ID
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// waitFor waits until id has been recorded by a handler.
func waitFor(t *testing.T, ctx context.Context, ch <-chan string, id string) {
	t.Helper()
	for {
		select {
		case got := <-ch:
			if got == id {
				return
			}
		case <-ctx.Done():
			t.Fatalf("waiting for message %s: %v", id, ctx.Err())
		}
	}
}

// run subscribes h to topic/group on b until the test ends.
func run(t *testing.T, ctx context.Context, b *membus.Bus, topic, group string, h bus.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Subscribe(ctx, topic, group, h); err != nil {
			t.Errorf("Subscribe(%s): %v", topic, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func testBus(t *testing.T, maxAttempts int) (*membus.Bus, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	b := membus.New(membus.Options{MaxAttempts: maxAttempts, Backoff: func(int) time.Duration { return time.Millisecond }})
	t.Cleanup(func() { _ = b.Close() })
	return b, ctx
}

func TestRecoverDeadLettersPanickingMessage(t *testing.T) {
	b, ctx := testBus(t, 2)
	for _, s := range [][2]string{{"in", "g"}, {"in.dlq", "dlq"}} {
		if err := b.Initialize(ctx, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	h := bus.Chain(func(ctx context.Context, m bus.Message) error {
		rec.add(m)
		if m.ID == "bad" {
			var nilMap map[string]int
			nilMap["x"]++ // a real runtime panic
		}
		return nil
	}, resilience.Recover())
	run(t, ctx, b, "in", "g", h)
	dead := make(chan bus.Message, 1)
	run(t, ctx, b, "in.dlq", "dlq", func(_ context.Context, m bus.Message) error { dead <- m; return nil })

	if err := b.Publish(ctx, "in", bus.Message{ID: "bad", Key: "k"}, bus.Message{ID: "good", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, rec.ch, "good")
	if diff := cmp.Diff([]string{"bad#1", "bad#2", "good#1"}, rec.list()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	select {
	case m := <-dead:
		if m.ID != "bad" || !strings.Contains(m.Headers[bus.HeaderError], "handler panicked") {
			t.Errorf("dead letter: got ID %q error header %q, want bad and a panic error", m.ID, m.Headers[bus.HeaderError])
		}
	case <-ctx.Done():
		t.Fatal("panicking message never dead-lettered")
	}
}

func TestRecoverError(t *testing.T) {
	h := resilience.Recover()(func(context.Context, bus.Message) error { panic("boom") })
	err := h(t.Context(), bus.Message{ID: "m1"})
	var pe *resilience.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, resilience.ErrPanic) {
		t.Fatalf("got %v, want a *PanicError matching ErrPanic", err)
	}
	if pe.Value != "boom" || pe.MessageID != "m1" || len(pe.Stack) == 0 {
		t.Errorf("PanicError: got value %v id %q stack %d bytes, want boom, m1, a stack", pe.Value, pe.MessageID, len(pe.Stack))
	}
	ok := resilience.Recover()(func(context.Context, bus.Message) error { return nil })
	if err := ok(t.Context(), bus.Message{}); err != nil {
		t.Errorf("handler without panic: got %v, want nil", err)
	}
}

func TestRetryMiddlewareRetriesInPlace(t *testing.T) {
	b, ctx := testBus(t, 5)
	p, s := newPolicy(t, resilience.Config{MaxAttempts: 4, FailureThreshold: 100}, nil)
	if err := b.Initialize(ctx, "in", "g"); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	calls := 0
	h := bus.Chain(func(ctx context.Context, m bus.Message) error {
		calls++ // one message at a time on one key
		if calls <= 2 {
			return fmt.Errorf("write points: %w", timeseries.ErrUnavailable)
		}
		rec.add(m)
		return nil
	}, resilience.Recover(), resilience.Retry(p, "timeseries"))
	run(t, ctx, b, "in", "g", h)
	if err := b.Publish(ctx, "in", bus.Message{ID: "m", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, rec.ch, "m")
	// The retries happened inside the middleware: the bus delivered once.
	if diff := cmp.Diff([]string{"m#1"}, rec.list()); diff != "" {
		t.Errorf("deliveries seen by the bus (-want +got):\n%s", diff)
	}
	if got := len(s.get()); got != 2 {
		t.Errorf("policy backoff waits: got %d, want 2", got)
	}
}

func TestPoisonRoutesPermanentFailures(t *testing.T) {
	b, ctx := testBus(t, 5)
	p, _ := newPolicy(t, resilience.Config{}, nil)
	for _, s := range [][2]string{{"in", "g"}, {"in.poison", "p"}} {
		if err := b.Initialize(ctx, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	transientOnce := true
	h := bus.Chain(func(ctx context.Context, m bus.Message) error {
		rec.add(m)
		switch {
		case m.ID == "undecodable":
			return fmt.Errorf("decode payload %q: %w", m.Payload, timeseries.ErrInvalid)
		case m.ID == "transient" && transientOnce:
			transientOnce = false
			return timeseries.ErrUnavailable
		}
		return nil
	}, resilience.Recover(), resilience.Poison(b, "in.poison", func(err error) bool { return !p.Retryable(err) }))
	run(t, ctx, b, "in", "g", h)
	poisoned := make(chan bus.Message, 1)
	run(t, ctx, b, "in.poison", "p", func(_ context.Context, m bus.Message) error { poisoned <- m; return nil })

	if err := b.Publish(ctx, "in",
		bus.Message{ID: "undecodable", Key: "k", Payload: []byte("{"), Headers: map[string]string{"src": "mqtt"}},
		bus.Message{ID: "transient", Key: "k"},
		bus.Message{ID: "end", Key: "k"},
	); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, rec.ch, "end")
	// The poison message is acknowledged at once; the transient failure
	// goes back to the bus and is redelivered.
	if diff := cmp.Diff([]string{"undecodable#1", "transient#1", "transient#2", "end#1"}, rec.list()); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	select {
	case m := <-poisoned:
		want := map[string]string{"src": "mqtt", bus.HeaderError: `decode payload "{": invalid argument`, bus.HeaderAttempts: "1"}
		if diff := cmp.Diff(want, m.Headers); diff != "" || string(m.Payload) != "{" {
			t.Errorf("poison message payload %q headers (-want +got):\n%s", m.Payload, diff)
		}
	case <-ctx.Done():
		t.Fatal("poison message never routed")
	}
}

func TestPoisonPublishFailureKeepsMessage(t *testing.T) {
	b := membus.New(membus.Options{})
	_ = b.Close()
	h := resilience.Poison(b, "in.poison", func(error) bool { return true })(func(context.Context, bus.Message) error {
		return timeseries.ErrInvalid
	})
	err := h(t.Context(), bus.Message{ID: "m"})
	if !errors.Is(err, bus.ErrClosed) || !errors.Is(err, timeseries.ErrInvalid) {
		t.Errorf("Poison with a closed bus: got %v, want an error matching bus.ErrClosed and the handler's error", err)
	}
}
