package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// TestStatusOf checks the mapping of the application store's error kinds
// (wrapped, as backends return them) and of the API's own kinds.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"appdb not found", fmt.Errorf("get anomaly a1: %w", appdb.ErrNotFound), http.StatusNotFound},
		{"appdb conflict", fmt.Errorf("update anomaly a1: %w", appdb.ErrConflict), http.StatusConflict},
		{"appdb field error", fmt.Errorf("create: %w", appdb.Invalid("maintenance.end", "not after start")), http.StatusBadRequest},
		{"appdb closed", fmt.Errorf("find: %w", appdb.ErrClosed), http.StatusServiceUnavailable},
		{"transition", fmt.Errorf("a1: %w", errTransition), http.StatusConflict},
		{"precondition", fmt.Errorf("a1: %w", errPrecondition), http.StatusPreconditionFailed},
		{"method", fmt.Errorf("x: %w", errMethod), http.StatusMethodNotAllowed},
		{"no store", errNoStore, http.StatusNotImplemented},
		{"forbidden", fmt.Errorf("x: %w", auth.ErrForbidden), http.StatusForbidden},
		{"bad request", badRequest("limit %q", "0"), http.StatusBadRequest},
		{"unknown", errors.New("disk on fire"), http.StatusInternalServerError},
		{"cancelled", fmt.Errorf("find: %w", context.Canceled), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got, _ := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%s: %v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestTransition(t *testing.T) {
	const (
		o = appdb.StateOpen
		a = appdb.StateAcknowledged
		r = appdb.StateResolved
	)
	tests := []struct {
		from, to appdb.AnomalyState
		changed  bool
		err      error
	}{
		{o, o, false, nil}, {o, a, true, nil}, {o, r, true, nil},
		{a, o, true, nil}, {a, a, false, nil}, {a, r, true, nil},
		{r, o, true, nil}, {r, a, false, errTransition}, {r, r, false, nil},
	}
	for _, tt := range tests {
		changed, err := transition("x", tt.from, tt.to)
		if changed != tt.changed || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("transition(%s -> %s) = %v, %v; want %v, %v", tt.from, tt.to, changed, err, tt.changed, tt.err)
		}
	}
}
