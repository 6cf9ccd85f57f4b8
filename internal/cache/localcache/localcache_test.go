package localcache_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/cache/cachetest"
	"github.com/vigil-iot/vigil/internal/cache/localcache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newCache(t testing.TB, opts localcache.Options) *localcache.Cache {
	t.Helper()
	c, err := localcache.New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func fakeHarness(t testing.TB) cachetest.Harness {
	clk := newFakeClock()
	c := newCache(t, localcache.Options{Now: clk.Now})
	return cachetest.Harness{Cache: c, Locker: c, Prefix: "local/", Advance: clk.Advance, Now: clk.Now}
}

func realHarness(t testing.TB) cachetest.Harness {
	c := newCache(t, localcache.Options{})
	return cachetest.Harness{Cache: c, Locker: c, Prefix: "local-real/"}
}

func TestConformanceFakeClock(t *testing.T) {
	cachetest.RunConformanceTests(t, fakeHarness)
}

// TestConformanceRealTime runs the suite the way it runs against a server:
// on the wall clock, polling for expiry.
func TestConformanceRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time suite waits for TTLs; skipped with -short")
	}
	cachetest.RunConformanceTests(t, realHarness)
}

func BenchmarkLocalcache(b *testing.B) {
	cachetest.RunBenchmarks(b, realHarness)
}

// TestSizeBound fills a small cache far past its limit: what it keeps stays
// within MaxBytes, and recently written entries are retrievable.
func TestSizeBound(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, localcache.Options{MaxBytes: maxBytes})
	value := make([]byte, 1000)
	const n = 1000 // ~1 MB written into a 64 KiB cache
	for i := range n {
		if err := c.Set(t.Context(), fmt.Sprintf("k%04d", i), value, 0); err != nil {
			t.Fatalf("Set(k%04d): %v", i, err)
		}
	}
	kept := 0
	for i := range n {
		if _, err := c.Get(t.Context(), fmt.Sprintf("k%04d", i)); err == nil {
			kept++
		} else if !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get(k%04d): %v", i, err)
		}
	}
	perEntry := len(value) + len("k0000") + 64
	if limit := maxBytes / perEntry; kept > limit || kept == 0 {
		t.Errorf("kept %d entries of %d bytes, want between 1 and %d (MaxBytes %d)", kept, perEntry, limit, maxBytes)
	}
}

func TestOversizedValue(t *testing.T) {
	c := newCache(t, localcache.Options{MaxBytes: 1024})
	err := c.Set(t.Context(), "big", make([]byte, 2048), 0)
	if !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("Set of a value larger than the cache = %v, want ErrInvalid", err)
	}
}

func TestClosed(t *testing.T) {
	c, err := localcache.New(localcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"Get", func() error { _, err := c.Get(t.Context(), "k"); return err }()},
		{"Set", c.Set(t.Context(), "k", nil, 0)},
		{"Delete", c.Delete(t.Context(), "k")},
		{"Lock", func() error { _, err := c.Lock(t.Context(), "l", time.Second); return err }()},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, cache.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", tc.name, tc.err)
		}
	}
}

// TestAbandonedLeasesExpire: leases taken and never released free their
// keys once expired, across more Lock calls than the sweep interval.
func TestAbandonedLeasesExpire(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, localcache.Options{Now: clk.Now})
	for i := range 3000 {
		if _, err := c.Lock(t.Context(), fmt.Sprintf("abandoned-%d", i), time.Second); err != nil {
			t.Fatalf("Lock(abandoned-%d): %v", i, err)
		}
	}
	clk.Advance(2 * time.Second)
	for i := range 3000 {
		l, err := c.Lock(t.Context(), fmt.Sprintf("abandoned-%d", i), time.Second)
		if err != nil {
			t.Fatalf("Lock(abandoned-%d) after expiry: %v", i, err)
		}
		if l.Token <= 3000 {
			t.Fatalf("Lock(abandoned-%d) token %d, want > 3000", i, l.Token)
		}
	}
}
