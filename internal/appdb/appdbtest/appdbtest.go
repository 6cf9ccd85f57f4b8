// Package appdbtest is the conformance suite of the application store. Every
// backend of package appdb runs RunConformanceTests against its real database
// and RunBenchmarks beside it:
//
//	func TestConformance(t *testing.T) { appdbtest.RunConformanceTests(t, newHarness) }
//
// The suite uses only the appdb interfaces: nothing in it is specific to one
// backend. Each test makes its own Harness, so backends give each one a fresh,
// empty database (a temporary file, a schema of its own, ...) and tests may
// run in parallel.
package appdbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// Harness gives the suite stores on one database.
type Harness interface {
	// Open opens a store on the harness's database, with now as the
	// store's clock. The suite closes each store it opens, and may open
	// another on the same database afterwards: it must see everything the
	// previous one wrote.
	Open(ctx context.Context, now func() time.Time) (appdb.Store, error)
	// Close releases the database (after every store was closed).
	Close() error
}

// HarnessMaker makes a Harness on a fresh, empty database.
type HarnessMaker func(ctx context.Context, tb testing.TB) (Harness, error)

// clock is the store's clock in the suite: it stands still until advanced.
// It starts in a non-UTC zone with nanoseconds, so that normalisation to UTC
// microseconds is tested.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// env is one test's database and clock.
type env struct {
	h     Harness
	clock *clock
}

func newEnv(t *testing.T, newHarness HarnessMaker) *env {
	t.Helper()
	h, err := newHarness(t.Context(), t)
	if err != nil {
		t.Fatalf("make harness: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close harness: %v", err)
		}
	})
	return &env{h: h, clock: newClock()}
}

// open opens a store that is closed at the end of the test.
func (e *env) open(t *testing.T) appdb.Store {
	t.Helper()
	s, err := e.h.Open(t.Context(), e.clock.now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// openStore makes an env and opens one store on it.
func openStore(t *testing.T, newHarness HarnessMaker) (appdb.Store, *env) {
	t.Helper()
	e := newEnv(t, newHarness)
	return e.open(t), e
}

// nt is a time as the store returns it (UTC, microseconds).
func nt(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// cmpOpts compare entities as the contract allows: JSON by value (a backend
// may reformat it), empty and nil collections alike. time.Time compares by
// instant (its Equal method); checkTimes checks the zone and precision.
var cmpOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	// Only json.RawMessage fields ([]byte would match the Transformer too),
	// and only when not both empty (EquateEmpty handles those).
	cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type() == reflect.TypeFor[json.RawMessage]() },
		cmp.FilterValues(func(x, y json.RawMessage) bool { return len(x) > 0 || len(y) > 0 },
			cmp.Transformer("json", func(r json.RawMessage) any {
				if len(r) == 0 {
					return nil
				}
				var v any
				if err := json.Unmarshal(r, &v); err != nil {
					return fmt.Sprintf("invalid JSON %q", r)
				}
				return v
			}))),
}

func diff(want, got any) string { return cmp.Diff(want, got, cmpOpts) }

// checkTimes fails when a time.Time anywhere in v is not in UTC or has a
// sub-microsecond part.
func checkTimes(t *testing.T, what string, v any) {
	t.Helper()
	var walk func(path string, rv reflect.Value)
	walk = func(path string, rv reflect.Value) {
		if rv.Type() == reflect.TypeFor[time.Time]() {
			tm := rv.Interface().(time.Time)
			if tm.IsZero() {
				return
			}
			if tm.Location() != time.UTC {
				t.Errorf("%s%s = %v: location %v, want UTC", what, path, tm, tm.Location())
			}
			if tm.Nanosecond()%1000 != 0 {
				t.Errorf("%s%s = %v: finer than a microsecond", what, path, tm)
			}
			return
		}
		switch rv.Kind() {
		case reflect.Struct:
			for i := range rv.NumField() {
				if rv.Type().Field(i).IsExported() {
					walk(path+"."+rv.Type().Field(i).Name, rv.Field(i))
				}
			}
		case reflect.Slice:
			for i := range rv.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), rv.Index(i))
			}
		}
	}
	walk("", reflect.ValueOf(v))
}

// wantErr fails unless err is kind (nil: no error).
func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case kind != nil && !errors.Is(err, kind):
		t.Fatalf("%s: got error %v, want one matching %v", what, err, kind)
	}
}

func ptr[T any](v T) *T { return &v }

// RunConformanceTests runs the whole suite against the backend that
// newHarness makes.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Run("Devices", func(t *testing.T) { runCRUD(t, newHarness, deviceCase()) })
	t.Run("DetectorConfigs", func(t *testing.T) { runCRUD(t, newHarness, detectorCase()) })
	t.Run("Anomalies", func(t *testing.T) { runCRUD(t, newHarness, anomalyCase()) })
	t.Run("MaintenanceWindows", func(t *testing.T) { runCRUD(t, newHarness, maintenanceCase()) })
	t.Run("ModelMeta", func(t *testing.T) { runCRUD(t, newHarness, modelCase()) })
	t.Run("APITokens", func(t *testing.T) { runCRUD(t, newHarness, tokenCase()) })
	t.Run("Outbox", func(t *testing.T) { runCRUD(t, newHarness, outboxCase()) })
	t.Run("Checkpoints", func(t *testing.T) { runCRUD(t, newHarness, checkpointCase()) })
	t.Run("SystemState", func(t *testing.T) { runCRUD(t, newHarness, stateCase()) })

	t.Run("Invalid", func(t *testing.T) { testInvalid(t, newHarness) })
	t.Run("FindAnomalies", func(t *testing.T) { testFindAnomalies(t, newHarness) })
	t.Run("FindOthers", func(t *testing.T) { testFindOthers(t, newHarness) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, newHarness) })
	t.Run("PageLimits", func(t *testing.T) { testPageLimits(t, newHarness) })
	t.Run("DeviceSeen", func(t *testing.T) { testDeviceSeen(t, newHarness) })
	t.Run("AnomalyComments", func(t *testing.T) { testAnomalyComments(t, newHarness) })
	t.Run("ModelVersions", func(t *testing.T) { testModelVersions(t, newHarness) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newHarness) })
	t.Run("OutboxClaim", func(t *testing.T) { testOutboxClaim(t, newHarness) })
	t.Run("Put", func(t *testing.T) { testPut(t, newHarness) })
	t.Run("Tx", func(t *testing.T) { testTx(t, newHarness) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, newHarness) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, newHarness) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, newHarness) })
	t.Run("Close", func(t *testing.T) { testClose(t, newHarness) })
}
