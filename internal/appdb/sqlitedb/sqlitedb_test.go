package sqlitedb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/appdbtest"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
)

func TestMain(m *testing.M) {
	if durabilityChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// harness opens stores on one SQLite file in a temporary directory.
type harness struct{ path string }

func newHarness(_ context.Context, tb testing.TB) (appdbtest.Harness, error) {
	return &harness{path: filepath.Join(tb.TempDir(), "app.db")}, nil
}

func (h *harness) Open(ctx context.Context, now func() time.Time) (appdb.Store, error) {
	return sqlitedb.Open(ctx, h.path, sqlitedb.Options{Now: now})
}

func (h *harness) Close() error { return nil }

func TestConformance(t *testing.T) { appdbtest.RunConformanceTests(t, newHarness) }

func BenchmarkStore(b *testing.B) { appdbtest.RunBenchmarks(b, newHarness) }
