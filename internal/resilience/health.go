package resilience

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrDuplicateCheck is returned by Register for a name already registered.
var ErrDuplicateCheck = errors.New("health check already registered")

// CheckFunc probes one dependency; nil means healthy. It must honour ctx.
type CheckFunc func(ctx context.Context) error

// Status is the health of one dependency or of the whole process.
type Status string

// Statuses, from best to worst.
const (
	// StatusUp: the check passed and the breaker (if any) is closed.
	StatusUp Status = "up"
	// StatusDegraded: the check passed but the dependency's breaker is
	// open or half-open: calls are being refused or probed.
	StatusDegraded Status = "degraded"
	// StatusDown: the check failed or timed out.
	StatusDown Status = "down"
)

func (s Status) rank() int {
	switch s {
	case StatusUp:
		return 0
	case StatusDegraded:
		return 1
	default:
		return 2
	}
}

// CheckReport is the result of one check.
type CheckReport struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Error is the check's error, empty when it passed.
	Error string `json:"error,omitempty"`
	// LatencyMS is how long the check ran, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Breaker is the state of the circuit breaker of the same name, when
	// the registry knows one.
	Breaker string `json:"breaker,omitempty"`
}

// Report is the result of Check, serialisable as the /readyz body.
type Report struct {
	// Status is the worst status of the checks (StatusUp when there are
	// none).
	Status Status        `json:"status"`
	Checks []CheckReport `json:"checks"`
}

// Ready reports whether no check is down.
func (r Report) Ready() bool { return r.Status != StatusDown }

// BreakerStates reports the breaker state of a dependency by name; *Policy
// implements it.
type BreakerStates interface {
	BreakerState(name string) (state string, ok bool)
}

// HealthOptions configures a Health registry.
type HealthOptions struct {
	// Timeout bounds each check. Default 2s.
	Timeout time.Duration
	// Now is the clock used to measure latency. Default time.Now.
	Now func() time.Time
	// Breakers, when set, adds to each check the state of the breaker of
	// the same name, and degrades a passing check whose breaker is not
	// closed.
	Breakers BreakerStates
}

// Health is a registry of named checks, one per store. It is safe for
// concurrent use.
type Health struct {
	opts HealthOptions

	mu     sync.Mutex
	checks map[string]CheckFunc
}

// NewHealth returns an empty registry.
func NewHealth(opts HealthOptions) *Health {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Health{opts: opts, checks: make(map[string]CheckFunc)}
}

// Register adds check under name, which should be the name the store's
// Policy calls use, so that its breaker state shows beside it.
func (h *Health) Register(name string, check CheckFunc) error {
	if name == "" || check == nil {
		return fmt.Errorf("register health check %q: empty name or nil check", name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.checks[name]; ok {
		return fmt.Errorf("register health check %q: %w", name, ErrDuplicateCheck)
	}
	h.checks[name] = check
	return nil
}

// Check runs every check concurrently, each bounded by the registry's
// Timeout and by ctx, and returns their results sorted by name. A check that
// ignores its context is reported down at the timeout and left to finish on
// its own.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	checks := make([]CheckFunc, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		checks = append(checks, h.checks[n])
	}
	h.mu.Unlock()

	results := make([]CheckReport, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() { results[i] = h.run(ctx, names[i], checks[i]) })
	}
	wg.Wait()

	r := Report{Status: StatusUp, Checks: results}
	for _, c := range results {
		if c.Status.rank() > r.Status.rank() {
			r.Status = c.Status
		}
	}
	return r
}

func (h *Health) run(ctx context.Context, name string, check CheckFunc) CheckReport {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	start := h.opts.Now()
	done := make(chan error, 1)
	go func() { done <- safeCheck(ctx, check) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("check did not return: %w", context.Cause(ctx))
	}
	rep := CheckReport{
		Name:      name,
		Status:    StatusUp,
		LatencyMS: float64(h.opts.Now().Sub(start).Microseconds()) / 1000,
	}
	if err != nil {
		rep.Status = StatusDown
		rep.Error = err.Error()
	}
	if h.opts.Breakers != nil {
		if st, ok := h.opts.Breakers.BreakerState(name); ok {
			rep.Breaker = st
			if rep.Status == StatusUp && st != StateClosed {
				rep.Status = StatusDegraded
			}
		}
	}
	return rep
}

func safeCheck(ctx context.Context, check CheckFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return check(ctx)
}

// String summarises r on one line, for logs.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(string(r.Status))
	for _, c := range r.Checks {
		fmt.Fprintf(&b, " %s=%s", c.Name, c.Status)
	}
	return b.String()
}
