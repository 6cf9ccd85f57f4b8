package membus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/bus/bustest"
	"github.com/vigil-iot/vigil/internal/bus/membus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type harness struct{}

func (harness) MakeBus(_ context.Context, cfg bustest.Config) (bustest.Bus, error) {
	mode := membus.Block
	if cfg.FailFast {
		mode = membus.FailFast
	}
	return membus.New(membus.Options{
		Capacity:    cfg.Capacity,
		MaxAttempts: cfg.MaxAttempts,
		Mode:        mode,
		Backoff:     func(int) time.Duration { return time.Millisecond },
	}), nil
}

func (harness) Capabilities() bustest.Capabilities {
	return bustest.Capabilities{Redelivery: true, DeadLetter: true, BackPressure: true}
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	bustest.RunConformanceTests(t, func(context.Context, *testing.T) (bustest.Harness, error) {
		return harness{}, nil
	})
}

// TestConformanceWorkers runs the suite with several workers per Subscribe
// and a single partition, the extremes of the partition claiming logic.
func TestConformanceWorkers(t *testing.T) {
	for _, opts := range []struct{ workers, partitions int }{{4, 16}, {3, 1}} {
		t.Run(fmt.Sprintf("workers=%d/partitions=%d", opts.workers, opts.partitions), func(t *testing.T) {
			bustest.RunConformanceTests(t, func(context.Context, *testing.T) (bustest.Harness, error) {
				return workersHarness{workers: opts.workers, partitions: opts.partitions}, nil
			})
		})
	}
}

type workersHarness struct{ workers, partitions int }

func (h workersHarness) MakeBus(_ context.Context, cfg bustest.Config) (bustest.Bus, error) {
	mode := membus.Block
	if cfg.FailFast {
		mode = membus.FailFast
	}
	return membus.New(membus.Options{
		Capacity:    cfg.Capacity,
		MaxAttempts: cfg.MaxAttempts,
		Mode:        mode,
		Backoff:     func(int) time.Duration { return time.Millisecond },
		Workers:     h.workers,
		Partitions:  h.partitions,
	}), nil
}

func (workersHarness) Capabilities() bustest.Capabilities { return harness{}.Capabilities() }
func (workersHarness) Close()                             {}

func TestOrphanMessagesGoToFirstGroup(t *testing.T) {
	ctx := t.Context()
	b := membus.New(membus.Options{})
	defer b.Close()
	if err := b.Publish(ctx, "t", bus.Message{ID: "early", Key: "k"}); err != nil {
		t.Fatalf("Publish with no group: %v", err)
	}
	if err := b.Initialize(ctx, "t", "first"); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	if err := b.Initialize(ctx, "t", "second"); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	if err := b.Publish(ctx, "t", bus.Message{ID: "late", Key: "k"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	tests := []struct {
		group string
		want  int
	}{
		{"first", 2},  // the orphan message and the later one
		{"second", 1}, // only the message published after it existed
		{"unknown", 0},
	}
	for _, tc := range tests {
		if got := b.Len("t", tc.group); got != tc.want {
			t.Errorf("Len(t, %s): got %d, want %d", tc.group, got, tc.want)
		}
	}
}

func TestCloseWakesBlockedPublisher(t *testing.T) {
	ctx := t.Context()
	b := membus.New(membus.Options{Capacity: 1})
	if err := b.Publish(ctx, "t", bus.Message{ID: "1"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Publish(ctx, "t", bus.Message{ID: "2"}) }()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish blocked on a full queue at Close: got %v, want an error wrapping bus.ErrClosed", err)
	}
}

func TestPartialBatchReportsAccepted(t *testing.T) {
	ctx := t.Context()
	b := membus.New(membus.Options{Capacity: 2, Mode: membus.FailFast})
	defer b.Close()
	if err := b.Initialize(ctx, "t", "g"); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	err := b.Publish(ctx, "t", bus.Message{ID: "1"}, bus.Message{ID: "2"}, bus.Message{ID: "3"})
	if !errors.Is(err, bus.ErrFull) {
		t.Fatalf("Publish of 3 into capacity 2: got %v, want ErrFull", err)
	}
	if got, want := b.Len("t", "g"), 2; got != want {
		t.Errorf("Len after a partially accepted batch: got %d, want %d (error: %v)", got, want, err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{8, 10 * time.Second},
		{1000, 10 * time.Second},
	}
	for _, tc := range tests {
		if got := membus.DefaultBackoff(tc.failures); got != tc.want {
			t.Errorf("DefaultBackoff(%d): got %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func BenchmarkPublishConsume(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			mb := membus.New(membus.Options{Workers: workers})
			defer mb.Close()
			if err := mb.Initialize(ctx, "t", "g"); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			var got sync.WaitGroup
			wg.Go(func() {
				_ = mb.Subscribe(ctx, "t", "g", func(context.Context, bus.Message) error {
					got.Done()
					return nil
				})
			})
			payload := []byte("cpu,device=d1 usage=0.5 1700000000000")
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = "device-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got.Add(1)
				if err := mb.Publish(ctx, "t", bus.Message{ID: "m", Key: keys[i%len(keys)], Payload: payload}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			got.Wait()
			cancel()
			wg.Wait()
		})
	}
}

func TestDeadLetterWaitsInFailFastMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := membus.New(membus.Options{Capacity: 1, Mode: membus.FailFast, MaxAttempts: 1})
		defer b.Close()
		for _, s := range [][2]string{{"t", "g"}, {"t.dlq", "d"}} {
			if err := b.Initialize(ctx, s[0], s[1]); err != nil {
				t.Fatal(err)
			}
		}
		// Fill the dead-letter topic so the next dead letter must wait.
		if err := b.Publish(ctx, "t.dlq", bus.Message{ID: "filler"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, "t", bus.Message{ID: "poison", Key: "k"}); err != nil {
			t.Fatal(err)
		}
		var attempts []int
		subCtx, stopSub := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.Subscribe(subCtx, "t", "g", func(_ context.Context, m bus.Message) error {
				attempts = append(attempts, m.Attempt)
				if m.Attempt > 5 {
					return nil // bounds a redelivery loop, should there be one
				}
				return errors.New("always fails")
			})
		}()
		synctest.Wait() // the consumer is blocked: dead-lettering waits for space
		if !slices.Equal(attempts, []int{1}) {
			t.Errorf("deliveries of the poison message while the dead-letter topic is full: got attempts %v, want [1]", attempts)
		}
		var dead []string
		dctx, stopDead := context.WithCancel(ctx)
		_ = b.Subscribe(dctx, "t.dlq", "d", func(_ context.Context, m bus.Message) error {
			dead = append(dead, m.ID)
			if len(dead) == 2 {
				stopDead()
			}
			return nil
		})
		stopSub()
		<-done
		if want := []string{"filler", "poison"}; !slices.Equal(dead, want) {
			t.Errorf("dead-letter topic: got %v, want %v", dead, want)
		}
	})
}
