// Package resilience holds the connection-management decorators of Vigil,
// written once and applied by internal/app around every store and consumer:
// a Policy (retry with exponential backoff and jitter, plus a circuit breaker
// per dependency), a Health registry reported by /readyz, a decorator of
// timeseries.Repository, and bus handler middleware (Recover, Retry, Poison).
//
// Backends only do I/O and classify their errors into kinds (for example
// timeseries.ErrUnavailable); this package decides, from those kinds, what is
// worth retrying. Bad input is never retried.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// ErrCircuitOpen is wrapped by the error a Policy returns, without calling
// the operation, while the circuit breaker of the dependency is open (or
// half-open and already probing).
var ErrCircuitOpen = errors.New("circuit breaker open")

// Classifier reports whether an error is transient, so that the operation
// may succeed if tried again.
type Classifier func(err error) bool

// Retryable is the default Classifier. It reports true for errors wrapping
// timeseries.ErrUnavailable, bus.ErrUnavailable or bus.ErrFull, for network
// errors (net.Error, connection refused or reset, broken pipe, unexpected
// EOF) and for context.DeadlineExceeded (an operation's own timeout). It
// reports false for nil, context.Canceled, ErrCircuitOpen and everything
// else: unknown errors, like bad input, are not retried.
func Retryable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled),
		errors.Is(err, ErrCircuitOpen):
		return false
	case errors.Is(err, timeseries.ErrUnavailable),
		errors.Is(err, bus.ErrUnavailable),
		errors.Is(err, bus.ErrFull),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// RetryableKinds returns a Classifier that reports true for the errors
// Retryable accepts and for errors wrapping any of kinds (for example the
// ErrUnavailable of another store).
func RetryableKinds(kinds ...error) Classifier {
	return func(err error) bool {
		if Retryable(err) {
			return true
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, ErrCircuitOpen) {
			return false
		}
		for _, k := range kinds {
			if errors.Is(err, k) {
				return true
			}
		}
		return false
	}
}

// Config configures a Policy. Zero fields take their defaults.
type Config struct {
	// MaxAttempts is the number of calls of the operation, first included.
	// Default 4; 1 disables retries.
	MaxAttempts int
	// InitialInterval is the wait before the first retry. Default 100ms.
	InitialInterval time.Duration
	// MaxInterval caps the wait between attempts (before jitter).
	// Default 5s.
	MaxInterval time.Duration
	// Multiplier grows the wait after each retry. Default 2.
	Multiplier float64
	// Jitter randomises each wait within ±Jitter of its value (0.5: from
	// half to one and a half times). Default 0.5; a negative value disables
	// jitter.
	Jitter float64

	// FailureThreshold is the number of consecutive failures (retryable
	// errors) that open the breaker. Default 5.
	FailureThreshold uint32
	// OpenTimeout is how long the breaker stays open before letting probe
	// calls through (half-open). Default 30s.
	OpenTimeout time.Duration
	// HalfOpenProbes is the number of calls let through while half-open;
	// that many successes close the breaker. Default 1.
	HalfOpenProbes uint32

	// Retryable classifies errors: only retryable errors are retried and
	// counted as failures by the breaker. Default Retryable.
	Retryable Classifier
	// Sleep waits d or until ctx is done, returning ctx's error then.
	// Default: a timer. Tests inject one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 4
	}
	if c.InitialInterval <= 0 {
		c.InitialInterval = 100 * time.Millisecond
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = 5 * time.Second
	}
	if c.Multiplier < 1 {
		c.Multiplier = 2
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.5
	case c.Jitter < 0:
		c.Jitter = 0
	case c.Jitter > 1:
		c.Jitter = 1
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 5
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 30 * time.Second
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = 1
	}
	if c.Retryable == nil {
		c.Retryable = Retryable
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Breaker states as reported by BreakerState and Health.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half-open"
	StateOpen     = "open"
)

// Policy applies retries and a circuit breaker to operations on named
// dependencies ("timeseries", "appdb", "bus", ...): each name has its own
// breaker, created on first use. A Policy is safe for concurrent use.
//
// Retries wrap the breaker: each attempt goes through the breaker, so an
// opening breaker also ends the retries of calls in progress.
type Policy struct {
	cfg Config

	mu       sync.Mutex
	breakers map[string]*dependency

	retries     *prometheus.CounterVec
	calls       *prometheus.CounterVec
	transitions *prometheus.CounterVec
	stateDesc   *prometheus.Desc
}

// NewPolicy returns a Policy configured by cfg. When reg is not nil it
// registers the policy's metrics with it:
//
//	vigil_resilience_calls_total{name,result}         result: ok, error, circuit_open
//	vigil_resilience_retries_total{name}              attempts after the first
//	vigil_resilience_breaker_transitions_total{name,to}
//	vigil_resilience_breaker_state{name}              0 closed, 1 half-open, 2 open
//
// To register two policies with one registry, wrap it with
// prometheus.WrapRegistererWith and a distinguishing label.
func NewPolicy(cfg Config, reg prometheus.Registerer) (*Policy, error) {
	p := &Policy{
		cfg:      cfg.withDefaults(),
		breakers: make(map[string]*dependency),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "resilience", Name: "retries_total",
			Help: "Attempts of an operation after its first, by dependency.",
		}, []string{"name"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "resilience", Name: "calls_total",
			Help: "Operations run through the policy, by dependency and final result (ok, error, circuit_open).",
		}, []string{"name", "result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "resilience", Name: "breaker_transitions_total",
			Help: "Circuit breaker state changes, by dependency and new state.",
		}, []string{"name", "to"}),
		stateDesc: prometheus.NewDesc("vigil_resilience_breaker_state",
			"Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open.", []string{"name"}, nil),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.retries, p.calls, p.transitions, stateCollector{p}} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register resilience metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Retryable reports whether the policy's classifier considers err transient.
func (p *Policy) Retryable(err error) bool { return p.cfg.Retryable(err) }

// dependency is the breaker of one name and its metrics, resolved once.
type dependency struct {
	cb                    *gobreaker.CircuitBreaker[struct{}]
	ok, failed, open, try prometheus.Counter
}

func (p *Policy) dependency(name string) *dependency {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.breakers[name]
	if ok {
		return d
	}
	threshold := p.cfg.FailureThreshold
	retryable := p.cfg.Retryable
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: p.cfg.HalfOpenProbes,
		Timeout:     p.cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		// Only transient errors say the dependency is failing; bad input
		// or not-found are answers of a healthy dependency.
		IsSuccessful: func(err error) bool { return err == nil || !retryable(err) },
		IsExcluded: func(err error) bool {
			var c callerCancelled
			return errors.As(err, &c)
		},
		OnStateChange: func(name string, _, to gobreaker.State) {
			p.transitions.WithLabelValues(name, stateName(to)).Inc()
		},
	})
	d = &dependency{
		cb:     cb,
		ok:     p.calls.WithLabelValues(name, "ok"),
		failed: p.calls.WithLabelValues(name, "error"),
		open:   p.calls.WithLabelValues(name, "circuit_open"),
		try:    p.retries.WithLabelValues(name),
	}
	p.breakers[name] = d
	return d
}

// callerCancelled marks an error that happened after the caller's context
// ended: it says nothing about the dependency, so the breaker ignores it.
type callerCancelled struct{ err error }

func (c callerCancelled) Error() string { return c.err.Error() }
func (c callerCancelled) Unwrap() error { return c.err }

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	default:
		return StateClosed
	}
}

// BreakerState returns the state of the breaker of name (StateClosed,
// StateHalfOpen or StateOpen) and whether the policy has run an operation
// for name yet.
func (p *Policy) BreakerState(name string) (string, bool) {
	p.mu.Lock()
	d, ok := p.breakers[name]
	p.mu.Unlock()
	if !ok {
		return StateClosed, false
	}
	return stateName(d.cb.State()), true
}

// Do runs op, retrying it with exponential backoff and jitter while it fails
// with an error the policy's classifier calls retryable, at most MaxAttempts
// times, and never after ctx is done. Every attempt goes through the circuit
// breaker of name: while it is open Do returns at once an error wrapping
// ErrCircuitOpen. Errors of op are returned as they are when op ran once,
// wrapped with the name and attempt count when it was retried.
func (p *Policy) Do(ctx context.Context, name string, op func(ctx context.Context) error) error {
	return p.do(ctx, name, p.cfg.Retryable, op)
}

// Call is Do for an operation that returns a value.
func Call[T any](ctx context.Context, p *Policy, name string, op func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := p.Do(ctx, name, func(ctx context.Context) error {
		var err error
		v, err = op(ctx)
		return err
	})
	return v, err
}

// do is Do retrying only the errors retry accepts; the breaker still counts
// failures with the policy's classifier.
func (p *Policy) do(ctx context.Context, name string, retry Classifier, op func(ctx context.Context) error) error {
	dep := p.dependency(name)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     p.cfg.InitialInterval,
		RandomizationFactor: p.cfg.Jitter,
		Multiplier:          p.cfg.Multiplier,
		MaxInterval:         p.cfg.MaxInterval,
	}
	bo.Reset()
	for attempt := 1; ; attempt++ {
		_, err := dep.cb.Execute(func() (struct{}, error) {
			err := op(ctx)
			if err != nil && ctx.Err() != nil {
				return struct{}{}, callerCancelled{err}
			}
			return struct{}{}, err
		})
		if c, ok := err.(callerCancelled); ok {
			err = c.err
		}
		switch {
		case err == nil:
			dep.ok.Inc()
			return nil
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			dep.open.Inc()
			return fmt.Errorf("%s: %w (attempt %d)", name, ErrCircuitOpen, attempt)
		case !retry(err) || attempt >= p.cfg.MaxAttempts || ctx.Err() != nil:
			dep.failed.Inc()
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("%s: %d attempts: %w", name, attempt, err)
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			dep.failed.Inc()
			return fmt.Errorf("%s: %d attempts: %w", name, attempt, err)
		}
		if serr := p.cfg.Sleep(ctx, wait); serr != nil {
			dep.failed.Inc()
			return fmt.Errorf("%s: wait before attempt %d: %w (last error: %w)", name, attempt+1, serr, err)
		}
		dep.try.Inc()
	}
}

// stateCollector reports the breaker states at scrape time.
type stateCollector struct{ p *Policy }

func (s stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- s.p.stateDesc }

func (s stateCollector) Collect(ch chan<- prometheus.Metric) {
	s.p.mu.Lock()
	names := make([]string, 0, len(s.p.breakers))
	for n := range s.p.breakers {
		names = append(names, n)
	}
	s.p.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		st, _ := s.p.BreakerState(n)
		v := 0.0
		switch st {
		case StateHalfOpen:
			v = 1
		case StateOpen:
			v = 2
		}
		ch <- prometheus.MustNewConstMetric(s.p.stateDesc, prometheus.GaugeValue, v, n)
	}
}
