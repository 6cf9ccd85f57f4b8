package bus_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/bus"
)

func TestChainOrder(t *testing.T) {
	var trace []string
	mw := func(name string) bus.Middleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, m bus.Message) error {
				trace = append(trace, name+" in")
				err := next(ctx, m)
				trace = append(trace, name+" out")
				return err
			}
		}
	}
	h := bus.Chain(func(context.Context, bus.Message) error {
		trace = append(trace, "handler")
		return nil
	}, mw("outer"), mw("inner"))
	if err := h(t.Context(), bus.Message{}); err != nil {
		t.Fatalf("handler: %v", err)
	}
	want := []string{"outer in", "inner in", "handler", "inner out", "outer out"}
	if diff := cmp.Diff(want, trace); diff != "" {
		t.Errorf("Chain call order (-want +got):\n%s", diff)
	}
}

func TestAttempts(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"set", map[string]string{bus.HeaderAttempts: "3"}, 3},
		{"missing", nil, 0},
		{"malformed", map[string]string{bus.HeaderAttempts: "three"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bus.Attempts(bus.Message{Headers: tc.headers}); got != tc.want {
				t.Errorf("Attempts(%v): got %d, want %d", tc.headers, got, tc.want)
			}
		})
	}
}

func TestDeadLetterTopic(t *testing.T) {
	if got, want := bus.DeadLetterTopic("telemetry"), "telemetry.dlq"; got != want {
		t.Errorf("DeadLetterTopic(telemetry): got %q, want %q", got, want)
	}
}
