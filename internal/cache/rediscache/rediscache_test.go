package rediscache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/cache/cachetest"
	"github.com/vigil-iot/vigil/internal/cache/rediscache"
	"github.com/vigil-iot/vigil/internal/testutil/tcpproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// envURL names the variable holding the URL of the Redis server to test
// against, e.g. redis://127.0.0.1:6379/0.
const envURL = "VIGIL_TEST_REDIS"

// serverURL returns the test server's URL, skipping the test when none is
// configured. A configured server that cannot be reached fails the test
// later, in Open.
func serverURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(envURL)
	if url == "" {
		t.Skipf("%s is not set; set it to a Redis URL (e.g. redis://127.0.0.1:6379/0) to run the Redis tests", envURL)
	}
	return url
}

// randomPrefix returns a namespace no other run uses.
func randomPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "vigil-test/" + hex.EncodeToString(b) + "/"
}

// rawClient is a plain go-redis client on the test server, to inspect and
// clean up what the Cache wrote.
func rawClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", url, err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// keysUnder lists the server's keys starting with prefix (prefix holds no
// glob characters).
func keysUnder(t testing.TB, rc *redis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	iter := rc.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// openCache opens a Cache under a fresh random prefix; cleanup closes it
// and deletes every key under the prefix.
func openCache(t testing.TB) (*rediscache.Cache, string) {
	t.Helper()
	url := serverURL(t)
	prefix := randomPrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rediscache.Open(ctx, url, rediscache.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("Open(%s=%q): %v", envURL, url, err)
	}
	rc := rawClient(t, url)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if keys := keysUnder(t, rc, prefix); len(keys) > 0 {
			if err := rc.Del(context.Background(), keys...).Err(); err != nil {
				t.Errorf("deleting %d test keys under %s: %v", len(keys), prefix, err)
			}
		}
	})
	return c, prefix
}

func harness(t testing.TB) cachetest.Harness {
	c, _ := openCache(t)
	return cachetest.Harness{Cache: c, Locker: c, Prefix: "suite/"}
}

func TestConformance(t *testing.T) {
	serverURL(t) // skip here, once, when no server is configured
	cachetest.RunConformanceTests(t, harness)
}

func BenchmarkCache(b *testing.B) {
	serverURL(b)
	cachetest.RunBenchmarks(b, harness)
}

// TestKeysUnderPrefix checks every key the Cache writes, for values, leases
// and fencing counters, lies under its prefix, and that cleanup can find
// them all.
func TestKeysUnderPrefix(t *testing.T) {
	url := serverURL(t)
	c, prefix := openCache(t)
	ctx := t.Context()
	if err := c.Set(ctx, "v", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	l, err := c.Lock(ctx, "v", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keys := keysUnder(t, rawClient(t, url), prefix)
	if len(keys) != 3 {
		t.Errorf("keys under %s = %q, want 3 (value, lease, fencing counter)", prefix, keys)
	}
	// Unlock removes the lease but keeps the counter, so tokens keep
	// increasing after the lease is gone.
	if err := c.Unlock(ctx, "v", l.Token); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, rawClient(t, url), prefix); len(keys) != 2 {
		t.Errorf("keys under %s after Unlock = %q, want 2 (value, fencing counter)", prefix, keys)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"bad scheme", "http://127.0.0.1:6379/0", cache.ErrInvalid},
		{"bad db", "redis://127.0.0.1:6379/notanumber", cache.ErrInvalid},
		// Port 1 on loopback: nothing listens, the connection is refused.
		{"unreachable", "redis://127.0.0.1:1/0", cache.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := rediscache.Open(ctx, tc.url, rediscache.Options{})
			if err == nil {
				_ = c.Close()
				t.Fatalf("Open(%q) succeeded, want %v", tc.url, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open(%q) = %v, want %v", tc.url, err, tc.want)
			}
		})
	}
}

func TestOpenRedactsPassword(t *testing.T) {
	_, err := rediscache.Open(t.Context(), "redis://user:s3cret@127.0.0.1:6379/x", rediscache.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open with bad URL = %v, want an error not showing the password", err)
	}
}

func TestClosed(t *testing.T) {
	c, _ := openCache(t)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	_, lockErr := c.Lock(ctx, "k", time.Second)
	_, getErr := c.Get(ctx, "k")
	for name, err := range map[string]error{
		"Get":    getErr,
		"Set":    c.Set(ctx, "k", nil, 0),
		"Delete": c.Delete(ctx, "k"),
		"Lock":   lockErr,
		"Unlock": c.Unlock(ctx, "k", 1),
		"Ping":   c.Ping(ctx),
	} {
		if !errors.Is(err, cache.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// TestContextCanceled: a cancelled call reports the context's error, not
// ErrUnavailable (which would make a retry policy try again).
func TestContextCanceled(t *testing.T) {
	c, _ := openCache(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Get(ctx, "k")
	if !errors.Is(err, context.Canceled) || errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Get with cancelled context = %v, want context.Canceled and not ErrUnavailable", err)
	}
}

func TestLockExpiresAtFromServerClock(t *testing.T) {
	c, _ := openCache(t)
	l, err := c.Lock(t.Context(), "k", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Loose bound: the server and the test share a host's clock, give or
	// take a minute.
	if d := time.Until(l.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("ExpiresAt = %v, %v from now; want about an hour", l.ExpiresAt, d)
	}
}

// TestServerGone: once the server cannot be reached, operations fail with
// ErrUnavailable (a retry policy may try again), not ErrNotFound or a bare
// network error.
func TestServerGone(t *testing.T) {
	url := serverURL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.New(t, opts.Addr)
	proxied := strings.Replace(url, opts.Addr, p.Addr(), 1)
	c, err := rediscache.Open(t.Context(), proxied, rediscache.Options{Prefix: randomPrefix(t)})
	if err != nil {
		t.Fatalf("Open via proxy %q: %v", proxied, err)
	}
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping via proxy: %v", err)
	}
	p.Cut()
	_, getErr := c.Get(t.Context(), "k")
	_, lockErr := c.Lock(t.Context(), "k", time.Second)
	for name, err := range map[string]error{
		"Get":  getErr,
		"Set":  c.Set(t.Context(), "k", []byte("v"), 0),
		"Lock": lockErr,
		"Ping": c.Ping(t.Context()),
	} {
		if !errors.Is(err, cache.ErrUnavailable) {
			t.Errorf("%s with the server gone = %v, want ErrUnavailable", name, err)
		}
	}
	// Bad input is still ErrInvalid, not ErrUnavailable.
	if err := c.Set(t.Context(), "", nil, 0); !errors.Is(err, cache.ErrInvalid) || errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("Set with empty key, server gone = %v, want ErrInvalid only", err)
	}
}
