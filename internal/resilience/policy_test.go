package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sleeps records the waits a Policy asks for, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newPolicy(t *testing.T, cfg resilience.Config, reg prometheus.Registerer) (*resilience.Policy, *sleeps) {
	t.Helper()
	s := &sleeps{}
	if cfg.Sleep == nil {
		cfg.Sleep = s.sleep
	}
	p, err := resilience.NewPolicy(cfg, reg)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p, s
}

// flaky fails with errs in turn, then succeeds; it counts its calls.
type flaky struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (f *flaky) op(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestDoRetriesOnlyRetryable(t *testing.T) {
	unavailable := fmt.Errorf("dial tsdb: %w", timeseries.ErrUnavailable)
	invalid := fmt.Errorf("point 3: %w", timeseries.ErrInvalid)
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantIs    error // nil: want success
		wantSame  bool  // the error is returned unchanged
	}{
		{"success first", nil, 1, nil, false},
		{"transient twice then success", repeat(unavailable, 2), 3, nil, false},
		{"network error then success", []error{netErr}, 2, nil, false},
		{"always transient", repeat(unavailable, 10), 4, timeseries.ErrUnavailable, false},
		{"bad input not retried", []error{invalid}, 1, timeseries.ErrInvalid, true},
		{"transient then bad input", []error{unavailable, invalid}, 2, timeseries.ErrInvalid, false},
		{"cancelled not retried", []error{context.Canceled}, 1, context.Canceled, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, s := newPolicy(t, resilience.Config{MaxAttempts: 4, FailureThreshold: 100}, nil)
			f := &flaky{errs: append([]error(nil), tc.errs...)}
			err := p.Do(t.Context(), "store", f.op)
			if f.calls != tc.wantCalls {
				t.Errorf("op calls: got %d, want %d", f.calls, tc.wantCalls)
			}
			if got, want := len(s.get()), tc.wantCalls-1; got != want {
				t.Errorf("backoff waits: got %d, want %d", got, want)
			}
			switch {
			case tc.wantIs == nil && err != nil:
				t.Errorf("Do: got %v, want nil", err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("Do: got %v, want an error wrapping %v", err, tc.wantIs)
			case tc.wantSame && err != tc.errs[0]:
				t.Errorf("Do: got %v, want the operation's error unchanged", err)
			}
		})
	}
}

func TestDoBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		cfg  resilience.Config
		want []time.Duration
	}{
		{"exponential", resilience.Config{MaxAttempts: 5, InitialInterval: 10 * ms, Multiplier: 2, Jitter: -1}, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms}},
		{"capped", resilience.Config{MaxAttempts: 6, InitialInterval: 10 * ms, Multiplier: 2, MaxInterval: 25 * ms, Jitter: -1}, []time.Duration{10 * ms, 20 * ms, 25 * ms, 25 * ms, 25 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.FailureThreshold = 100
			p, s := newPolicy(t, tc.cfg, nil)
			f := &flaky{errs: repeat(timeseries.ErrUnavailable, 100)}
			if err := p.Do(t.Context(), "store", f.op); !errors.Is(err, timeseries.ErrUnavailable) {
				t.Fatalf("Do: got %v, want ErrUnavailable", err)
			}
			if diff := cmp.Diff(tc.want, s.get()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDoJitter(t *testing.T) {
	p, s := newPolicy(t, resilience.Config{MaxAttempts: 200, InitialInterval: 100 * time.Millisecond, Multiplier: 1, Jitter: 0.5, FailureThreshold: 1000}, nil)
	f := &flaky{errs: repeat(timeseries.ErrUnavailable, 1000)}
	_ = p.Do(t.Context(), "store", f.op)
	waits := s.get()
	distinct := map[time.Duration]bool{}
	for _, d := range waits {
		if d < 50*time.Millisecond || d > 150*time.Millisecond {
			t.Errorf("wait %v outside [50ms, 150ms] for interval 100ms and jitter 0.5", d)
		}
		distinct[d] = true
	}
	// 199 draws from a continuous range: equal values would mean no jitter.
	if len(distinct) < 2 {
		t.Errorf("got %d distinct waits out of %d, want jittered waits", len(distinct), len(waits))
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, err := resilience.NewPolicy(resilience.Config{
		MaxAttempts: 10,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel() // the caller gives up while we wait
			<-ctx.Done()
			return ctx.Err()
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{errs: repeat(timeseries.ErrUnavailable, 10)}
	err = p.Do(ctx, "store", f.op)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, timeseries.ErrUnavailable) {
		t.Errorf("Do cancelled during backoff: got %v, want an error wrapping context.Canceled and the last error", err)
	}
	if f.calls != 1 {
		t.Errorf("op calls: got %d, want 1", f.calls)
	}
}

func TestBreakerOpens(t *testing.T) {
	p, _ := newPolicy(t, resilience.Config{MaxAttempts: 1, FailureThreshold: 3}, nil)
	ctx := t.Context()
	// Bad input says nothing about the store: it never trips the breaker.
	bad := &flaky{errs: repeat(timeseries.ErrInvalid, 10)}
	for range 10 {
		_ = p.Do(ctx, "store", bad.op)
	}
	if st, _ := p.BreakerState("store"); st != resilience.StateClosed {
		t.Fatalf("breaker after 10 bad-input errors: got %s, want closed", st)
	}
	down := &flaky{errs: repeat(timeseries.ErrUnavailable, 10)}
	for range 3 {
		_ = p.Do(ctx, "store", down.op)
	}
	if st, _ := p.BreakerState("store"); st != resilience.StateOpen {
		t.Fatalf("breaker after 3 consecutive unavailable errors: got %s, want open", st)
	}
	calls := down.calls
	err := p.Do(ctx, "store", down.op)
	if !errors.Is(err, resilience.ErrCircuitOpen) {
		t.Errorf("Do with open breaker: got %v, want ErrCircuitOpen", err)
	}
	if down.calls != calls {
		t.Errorf("op called %d times with an open breaker, want 0", down.calls-calls)
	}
	// Breakers are per name.
	other := &flaky{}
	if err := p.Do(ctx, "other", other.op); err != nil {
		t.Errorf("Do on another name: got %v, want nil", err)
	}
}

func TestBreakerOpeningEndsRetries(t *testing.T) {
	p, _ := newPolicy(t, resilience.Config{MaxAttempts: 10, FailureThreshold: 2}, nil)
	f := &flaky{errs: repeat(timeseries.ErrUnavailable, 10)}
	err := p.Do(t.Context(), "store", f.op)
	if !errors.Is(err, resilience.ErrCircuitOpen) {
		t.Errorf("Do: got %v, want ErrCircuitOpen", err)
	}
	if f.calls != 2 {
		t.Errorf("op calls: got %d, want 2 (the breaker opens after the second failure)", f.calls)
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPolicy(t, resilience.Config{MaxAttempts: 1, FailureThreshold: 1, OpenTimeout: time.Minute}, nil)
		ctx := t.Context()
		fail := func(context.Context) error { return timeseries.ErrUnavailable }
		ok := func(context.Context) error { return nil }

		_ = p.Do(ctx, "store", fail)
		if st, _ := p.BreakerState("store"); st != resilience.StateOpen {
			t.Fatalf("after a failure: got %s, want open", st)
		}
		time.Sleep(time.Minute + time.Second) // fake time inside the bubble
		if st, _ := p.BreakerState("store"); st != resilience.StateHalfOpen {
			t.Fatalf("after the open timeout: got %s, want half-open", st)
		}
		_ = p.Do(ctx, "store", fail) // failed probe: open again
		if st, _ := p.BreakerState("store"); st != resilience.StateOpen {
			t.Fatalf("after a failed probe: got %s, want open", st)
		}
		time.Sleep(time.Minute + time.Second)
		if err := p.Do(ctx, "store", ok); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if st, _ := p.BreakerState("store"); st != resilience.StateClosed {
			t.Fatalf("after a successful probe: got %s, want closed", st)
		}
	})
}

func TestCallerCancellationDoesNotTrip(t *testing.T) {
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(t.Context(), time.Unix(0, 0))
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPolicy(t, resilience.Config{MaxAttempts: 1, FailureThreshold: 1}, nil)
			for range 3 {
				ctx, cancel := tc.ctx()
				err := p.Do(ctx, "store", func(ctx context.Context) error {
					cancel() // the caller gives up while the store answers
					return fmt.Errorf("query: %w", ctx.Err())
				})
				if !errors.Is(err, tc.wantIs) {
					t.Fatalf("Do: got %v, want %v", err, tc.wantIs)
				}
			}
			if st, _ := p.BreakerState("store"); st != resilience.StateClosed {
				t.Errorf("breaker after the caller's context ended thrice: got %s, want closed", st)
			}
		})
	}
}

func TestCall(t *testing.T) {
	p, _ := newPolicy(t, resilience.Config{}, nil)
	n := 0
	got, err := resilience.Call(t.Context(), p, "store", func(context.Context) (string, error) {
		n++
		if n < 2 {
			return "", timeseries.ErrUnavailable
		}
		return "value", nil
	})
	if err != nil || got != "value" {
		t.Errorf("Call: got (%q, %v), want (value, nil)", got, err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p, _ := newPolicy(t, resilience.Config{MaxAttempts: 3, FailureThreshold: 3}, reg)
	ctx := t.Context()
	_ = p.Do(ctx, "tsdb", (&flaky{errs: repeat(timeseries.ErrUnavailable, 2)}).op) // ok after 2 retries
	_ = p.Do(ctx, "tsdb", (&flaky{errs: repeat(timeseries.ErrUnavailable, 5)}).op) // 3 failures (2 retries) open it
	_ = p.Do(ctx, "tsdb", (&flaky{}).op)                                           // rejected
	_ = p.Do(ctx, "appdb", (&flaky{errs: []error{timeseries.ErrInvalid}}).op)      // error, no retry

	want := `
# HELP vigil_resilience_breaker_state Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open.
# TYPE vigil_resilience_breaker_state gauge
vigil_resilience_breaker_state{name="appdb"} 0
vigil_resilience_breaker_state{name="tsdb"} 2
# HELP vigil_resilience_breaker_transitions_total Circuit breaker state changes, by dependency and new state.
# TYPE vigil_resilience_breaker_transitions_total counter
vigil_resilience_breaker_transitions_total{name="tsdb",to="open"} 1
# HELP vigil_resilience_calls_total Operations run through the policy, by dependency and final result (ok, error, circuit_open).
# TYPE vigil_resilience_calls_total counter
vigil_resilience_calls_total{name="appdb",result="circuit_open"} 0
vigil_resilience_calls_total{name="appdb",result="error"} 1
vigil_resilience_calls_total{name="appdb",result="ok"} 0
vigil_resilience_calls_total{name="tsdb",result="circuit_open"} 1
vigil_resilience_calls_total{name="tsdb",result="error"} 1
vigil_resilience_calls_total{name="tsdb",result="ok"} 1
# HELP vigil_resilience_retries_total Attempts of an operation after its first, by dependency.
# TYPE vigil_resilience_retries_total counter
vigil_resilience_retries_total{name="appdb"} 0
vigil_resilience_retries_total{name="tsdb"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if _, err := resilience.NewPolicy(resilience.Config{}, reg); err == nil {
		t.Error("NewPolicy registering twice with one registry: got nil error, want a registration error")
	}
}

func TestRetryable(t *testing.T) {
	appdbUnavailable := errors.New("appdb unavailable")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"timeseries unavailable", fmt.Errorf("write: %w", timeseries.ErrUnavailable), true},
		{"bus unavailable", bus.ErrUnavailable, true},
		{"bus full", fmt.Errorf("publish: %w", bus.ErrFull), true},
		{"deadline", context.DeadlineExceeded, true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"net error", &net.DNSError{Err: "timeout", IsTimeout: true}, true},
		{"cancelled", context.Canceled, false},
		{"unavailable but cancelled", fmt.Errorf("%w: %w", timeseries.ErrUnavailable, context.Canceled), false},
		{"circuit open", resilience.ErrCircuitOpen, false},
		{"invalid", timeseries.ErrInvalid, false},
		{"conflict", timeseries.ErrConflict, false},
		{"unknown", errors.New("boom"), false},
		{"other store kind, default", appdbUnavailable, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resilience.Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v): got %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	classify := resilience.RetryableKinds(appdbUnavailable)
	if !classify(fmt.Errorf("get device: %w", appdbUnavailable)) {
		t.Error("RetryableKinds(appdbUnavailable) on a wrapped appdbUnavailable: got false, want true")
	}
	if classify(timeseries.ErrInvalid) {
		t.Error("RetryableKinds(appdbUnavailable) on ErrInvalid: got true, want false")
	}
}

func BenchmarkDo(b *testing.B) {
	p, err := resilience.NewPolicy(resilience.Config{}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	op := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Do(ctx, "store", op); err != nil {
			b.Fatal(err)
		}
	}
}
