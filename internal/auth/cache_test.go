package auth_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestCacheRevokeWithinTTL verifies, over the real SQLite store, that a
// cached token stays usable until the TTL passes after a revocation made in
// the store, that Forget makes the revocation immediate, and that use is
// recorded at most once per TouchEvery.
func TestCacheRevokeWithinTTL(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	db, err := sqlitedb.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), sqlitedb.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("open sqlitedb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	create := func(id string) string {
		t.Helper()
		secret, hash, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Tokens().Create(t.Context(), appdb.APIToken{ID: id, Name: id, Role: appdb.RoleWrite, SecretHash: hash}); err != nil {
			t.Fatalf("create token %s: %v", id, err)
		}
		return secret
	}
	revoke := func(id string) {
		t.Helper()
		tok, err := db.Tokens().Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		tok.RevokedAt = clk.Now()
		if _, err := db.Tokens().Update(t.Context(), tok); err != nil {
			t.Fatalf("revoke %s: %v", id, err)
		}
	}
	lastUsed := func(id string) time.Time {
		t.Helper()
		tok, err := db.Tokens().Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return tok.LastUsedAt
	}
	a, b := create("a"), create("b")
	cache := auth.NewCache(auth.AppDBTokens{Repo: db.Tokens()}, auth.CacheOptions{
		TTL: 10 * time.Second, TouchEvery: time.Minute, Touch: db.Tokens().Touch, Now: clk.Now,
	})
	v := auth.NewVerifier(cache, clk.Now)
	verify := func(secret string) error {
		_, err := v.Verify(t.Context(), secret)
		return err
	}

	t0 := clk.Now()
	if err := verify(a); err != nil {
		t.Fatalf("Verify(a): %v", err)
	}
	if got := lastUsed("a"); !got.Equal(t0) {
		t.Errorf("a last used %v after first use, want %v", got, t0)
	}
	if err := verify(b); err != nil {
		t.Fatalf("Verify(b): %v", err)
	}
	clk.Add(time.Second)
	revoke("a")
	revoke("b")
	if err := verify(a); err != nil {
		t.Errorf("Verify(a) 1s after revocation, within TTL: got %v, want cached success", err)
	}
	if got := lastUsed("a"); !got.Equal(t0) {
		t.Errorf("a last used %v after a second use within TouchEvery, want unchanged %v", got, t0)
	}
	v.Forget("b")
	if err := verify(b); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Verify(b) after Forget: got %v, want ErrUnauthenticated", err)
	}
	clk.Add(10 * time.Second)
	if err := verify(a); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Verify(a) after the TTL: got %v, want ErrUnauthenticated", err)
	}
	if err := verify("vgl_unknown"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Verify(unknown): got %v, want ErrUnauthenticated", err)
	}

	// Touch again once TouchEvery has passed.
	c := create("c")
	if err := verify(c); err != nil {
		t.Fatal(err)
	}
	t1 := clk.Now()
	clk.Add(30 * time.Second)
	if err := verify(c); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed("c"); !got.Equal(t1) {
		t.Errorf("c last used %v 30s after first use, want %v", got, t1)
	}
	clk.Add(31 * time.Second)
	if err := verify(c); err != nil {
		t.Fatal(err)
	}
	if got, want := lastUsed("c"), clk.Now(); !got.Equal(want) {
		t.Errorf("c last used %v 61s after first use, want %v", got, want)
	}
}

// BenchmarkVerify measures one verification against the real SQLite store,
// with and without the Cache in front.
func BenchmarkVerify(b *testing.B) {
	db, err := sqlitedb.Open(b.Context(), filepath.Join(b.TempDir(), "app.db"), sqlitedb.Options{})
	if err != nil {
		b.Fatalf("open sqlitedb: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	secret, hash, err := auth.Generate()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Tokens().Create(b.Context(), appdb.APIToken{Name: "bench", Role: appdb.RoleRead, SecretHash: hash}); err != nil {
		b.Fatal(err)
	}
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cached), func(b *testing.B) {
			var store auth.TokenStore = auth.AppDBTokens{Repo: db.Tokens()}
			if cached {
				store = auth.NewCache(store, auth.CacheOptions{Touch: db.Tokens().Touch})
			}
			v := auth.NewVerifier(store, time.Now)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
