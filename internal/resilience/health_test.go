package resilience_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/resilience"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// stepClock advances by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func TestHealthCheck(t *testing.T) {
	fixed := func() time.Time { return time.Unix(0, 0) }
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.1:5432: connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	boom := func(context.Context) error { panic("bad check") }
	tests := []struct {
		name   string
		checks map[string]resilience.CheckFunc
		want   resilience.Report
	}{
		{"none", nil, resilience.Report{Status: resilience.StatusUp, Checks: []resilience.CheckReport{}}},
		{"all up", map[string]resilience.CheckFunc{"tsdb": up, "appdb": up}, resilience.Report{
			Status: resilience.StatusUp,
			Checks: []resilience.CheckReport{{Name: "appdb", Status: "up"}, {Name: "tsdb", Status: "up"}},
		}},
		{"one down", map[string]resilience.CheckFunc{"tsdb": up, "appdb": down}, resilience.Report{
			Status: resilience.StatusDown,
			Checks: []resilience.CheckReport{
				{Name: "appdb", Status: "down", Error: "dial tcp 10.0.0.1:5432: connection refused"},
				{Name: "tsdb", Status: "up"},
			},
		}},
		{"timeout", map[string]resilience.CheckFunc{"cache": hang}, resilience.Report{
			Status: resilience.StatusDown,
			Checks: []resilience.CheckReport{{Name: "cache", Status: "down", Error: "context deadline exceeded"}},
		}},
		{"panic", map[string]resilience.CheckFunc{"bus": boom}, resilience.Report{
			Status: resilience.StatusDown,
			Checks: []resilience.CheckReport{{Name: "bus", Status: "down", Error: "check panicked: bad check"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := resilience.NewHealth(resilience.HealthOptions{Timeout: 10 * time.Millisecond, Now: fixed})
			for name, c := range tc.checks {
				if err := h.Register(name, c); err != nil {
					t.Fatalf("Register(%s): %v", name, err)
				}
			}
			got := h.Check(t.Context())
			// A hanging check may be cut by the registry's timeout or
			// return ctx's error itself: both read "deadline exceeded".
			for i, c := range got.Checks {
				if c.Error == "check did not return: context deadline exceeded" {
					got.Checks[i].Error = "context deadline exceeded"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			if got.Ready() != (tc.want.Status != resilience.StatusDown) {
				t.Errorf("Ready: got %v for status %s", got.Ready(), got.Status)
			}
		})
	}
}

func TestHealthLatencyAndJSON(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0), step: 1500 * time.Microsecond}
	h := resilience.NewHealth(resilience.HealthOptions{Now: clock.Now})
	if err := h.Register("tsdb", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rep := h.Check(t.Context())
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{"status":"up","checks":[{"name":"tsdb","status":"up","latency_ms":1.5}]}`
	if string(b) != want {
		t.Errorf("JSON report: got %s, want %s", b, want)
	}
}

func TestHealthRegisterErrors(t *testing.T) {
	h := resilience.NewHealth(resilience.HealthOptions{})
	ok := func(context.Context) error { return nil }
	if err := h.Register("tsdb", ok); err != nil {
		t.Fatal(err)
	}
	if err := h.Register("tsdb", ok); !errors.Is(err, resilience.ErrDuplicateCheck) {
		t.Errorf("Register twice: got %v, want ErrDuplicateCheck", err)
	}
	if err := h.Register("", ok); err == nil {
		t.Error("Register with an empty name: got nil error")
	}
	if err := h.Register("x", nil); err == nil {
		t.Error("Register with a nil check: got nil error")
	}
}

func TestHealthShowsBreaker(t *testing.T) {
	p, _ := newPolicy(t, resilience.Config{MaxAttempts: 1, FailureThreshold: 1}, nil)
	_ = p.Do(t.Context(), "tsdb", func(context.Context) error { return timeseries.ErrUnavailable })
	_ = p.Do(t.Context(), "appdb", func(context.Context) error { return nil })
	h := resilience.NewHealth(resilience.HealthOptions{Breakers: p, Now: func() time.Time { return time.Unix(0, 0) }})
	for _, name := range []string{"tsdb", "appdb", "objects"} {
		if err := h.Register(name, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	want := resilience.Report{
		Status: resilience.StatusDegraded,
		Checks: []resilience.CheckReport{
			{Name: "appdb", Status: "up", Breaker: "closed"},
			{Name: "objects", Status: "up"}, // no breaker yet
			{Name: "tsdb", Status: "degraded", Breaker: "open"},
		},
	}
	got := h.Check(t.Context())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Check with breakers (-want +got):\n%s", diff)
	}
	if !got.Ready() {
		t.Error("Ready of a degraded report: got false, want true")
	}
}
