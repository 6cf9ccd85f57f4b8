// Package cachetest is the conformance suite of the cache store: every
// backend (localcache in process, rediscache against a real server) runs
// RunConformanceTests unchanged, and RunBenchmarks for comparable figures.
//
// A backend with an injectable clock lets the suite move time (Harness
// Advance); one on real time (a Redis server) is tested with short TTLs and
// polling, and the suite never asserts on how long anything took.
package cachetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/cache"
)

// Harness is what a backend gives the suite.
type Harness struct {
	// Cache and Locker under test (usually one value implementing both).
	Cache  cache.Cache
	Locker cache.Locker
	// Prefix namespaces every key the suite uses, so runs against one
	// shared server do not collide (e.g. "cachetest/<random>/").
	Prefix string
	// Advance moves the clock the backend reads forward by d, and Now
	// reads it. Both nil means the backend runs on real time: the suite
	// then waits for expiry by polling, using TTLs of at least
	// RealTimeTTL.
	Advance func(d time.Duration)
	Now     func() time.Time
}

// HarnessMaker returns a harness over a fresh namespace; it registers its
// cleanup with t.Cleanup.
type HarnessMaker func(t testing.TB) Harness

// RealTimeTTL is the short TTL the suite uses on real-time backends. The
// suite assumes two consecutive calls complete within it (a lease taken for
// RealTimeTTL is still held by the next call); it never asserts that
// anything happened quickly.
const RealTimeTTL = time.Second

// pollTimeout bounds how long the suite waits, on real time, for an expiry
// that is due after RealTimeTTL.
const pollTimeout = 10 * time.Second

// RunConformanceTests runs the cache and locker conformance suite.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"Miss", testMiss},
		{"CopySemantics", testCopySemantics},
		{"Delete", testDelete},
		{"Invalid", testInvalid},
		{"TTLExpiry", testTTLExpiry},
		{"OverwriteResetsTTL", testOverwriteResetsTTL},
		{"LockExclusive", testLockExclusive},
		{"LockExpiryFreesLock", testLockExpiry},
		{"FencingTokensIncrease", testFencing},
		{"UnlockStaleToken", testUnlockStale},
		{"Extend", testExtend},
		{"LockKeysIndependent", testLockKeysIndependent},
		{"LockUnderContention", testLockUnderContention},
		{"Acquire", testAcquire},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if (h.Advance == nil) != (h.Now == nil) {
				t.Fatal("harness must set both Advance and Now, or neither")
			}
			h.Prefix += tc.name + "/"
			tc.fn(t, h)
		})
	}
}

func fakeClock(h Harness) bool { return h.Advance != nil }

// ttl returns a TTL the suite can see expire: long on a fake clock (time
// is moved explicitly), RealTimeTTL on real time.
func ttl(h Harness) time.Duration {
	if fakeClock(h) {
		return 10 * time.Second
	}
	return RealTimeTTL
}

// pastExpiry moves (fake clock) or waits (real time) until a TTL of d
// started now has run out.
func pastExpiry(t *testing.T, h Harness, d time.Duration) {
	t.Helper()
	if fakeClock(h) {
		h.Advance(d + time.Millisecond)
		return
	}
	time.Sleep(d + 50*time.Millisecond)
}

// eventually retries cond until it returns nil; on a fake clock it must
// hold at once.
func eventually(t *testing.T, h Harness, what string, cond func() error) {
	t.Helper()
	err := cond()
	if fakeClock(h) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	deadline := time.Now().Add(pollTimeout)
	for err != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, pollTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
		err = cond()
	}
}

func mustSet(t *testing.T, h Harness, key string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := h.Cache.Set(t.Context(), key, v, ttl); err != nil {
		t.Fatalf("Set(%q, ttl %v): %v", key, ttl, err)
	}
}

func wantValue(t *testing.T, h Harness, key string, want []byte) {
	t.Helper()
	got, err := h.Cache.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if string(got) != string(want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMiss(h Harness, key string) error {
	got, err := h.Cache.Get(context.Background(), key)
	if !errors.Is(err, cache.ErrNotFound) {
		return fmt.Errorf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
	return nil
}

func mustLock(t *testing.T, h Harness, key string, ttl time.Duration) cache.Lock {
	t.Helper()
	l, err := h.Locker.Lock(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Lock(%q, %v): %v", key, ttl, err)
	}
	if l.Key != key || l.Token == 0 {
		t.Fatalf("Lock(%q) = %+v, want Key %q and a non-zero Token", key, l, key)
	}
	return l
}

func wantLocked(t *testing.T, h Harness, key string) {
	t.Helper()
	l, err := h.Locker.Lock(t.Context(), key, time.Hour)
	if !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("Lock(%q) of a held lock = %+v, %v; want ErrLocked", key, l, err)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	tests := []struct {
		name  string
		value []byte
		ttl   time.Duration
	}{
		{"empty", []byte{}, 0},
		{"small", []byte("model-v3"), 0},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, 0}, time.Hour},
		{"64KiB", []byte(strings.Repeat("abcdefgh", 8<<10)), time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := h.Prefix + tc.name
			mustSet(t, h, key, tc.value, tc.ttl)
			wantValue(t, h, key, tc.value)
		})
	}
	// Keys differing only by case or a trailing byte are distinct.
	mustSet(t, h, h.Prefix+"K", []byte("upper"), 0)
	mustSet(t, h, h.Prefix+"k", []byte("lower"), 0)
	mustSet(t, h, h.Prefix+"k ", []byte("space"), 0)
	wantValue(t, h, h.Prefix+"K", []byte("upper"))
	wantValue(t, h, h.Prefix+"k", []byte("lower"))
	wantValue(t, h, h.Prefix+"k ", []byte("space"))
	// Overwrite replaces the value.
	mustSet(t, h, h.Prefix+"k", []byte("second"), 0)
	wantValue(t, h, h.Prefix+"k", []byte("second"))
}

func testMiss(t *testing.T, h Harness) {
	if err := wantMiss(h, h.Prefix+"never-set"); err != nil {
		t.Error(err)
	}
}

func testCopySemantics(t *testing.T, h Harness) {
	key := h.Prefix + "copy"
	v := []byte("original")
	mustSet(t, h, key, v, 0)
	copy(v, "MUTATED!")
	wantValue(t, h, key, []byte("original"))
	got, err := h.Cache.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	copy(got, "CHANGED!")
	wantValue(t, h, key, []byte("original"))
}

func testDelete(t *testing.T, h Harness) {
	key := h.Prefix + "del"
	mustSet(t, h, key, []byte("x"), 0)
	mustSet(t, h, key+"-other", []byte("y"), 0)
	if err := h.Cache.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	if err := wantMiss(h, key); err != nil {
		t.Error(err)
	}
	if err := h.Cache.Delete(t.Context(), key); err != nil {
		t.Errorf("second Delete(%q) = %v, want nil", key, err)
	}
	wantValue(t, h, key+"-other", []byte("y"))
}

func testInvalid(t *testing.T, h Harness) {
	ctx := t.Context()
	long := h.Prefix + strings.Repeat("k", cache.MaxKeyLen)
	tests := []struct {
		name string
		err  error
	}{
		{"Set empty key", h.Cache.Set(ctx, "", []byte("x"), 0)},
		{"Set long key", h.Cache.Set(ctx, long, []byte("x"), 0)},
		{"Set negative ttl", h.Cache.Set(ctx, h.Prefix+"neg", []byte("x"), -time.Second)},
		{"Get empty key", func() error { _, err := h.Cache.Get(ctx, ""); return err }()},
		{"Delete empty key", h.Cache.Delete(ctx, "")},
		{"Lock empty key", func() error { _, err := h.Locker.Lock(ctx, "", time.Second); return err }()},
		{"Lock zero ttl", func() error { _, err := h.Locker.Lock(ctx, h.Prefix+"l", 0); return err }()},
		{"Lock negative ttl", func() error { _, err := h.Locker.Lock(ctx, h.Prefix+"l", -time.Second); return err }()},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, cache.ErrInvalid) {
			t.Errorf("%s: error = %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	if err := wantMiss(h, h.Prefix+"neg"); err != nil {
		t.Errorf("after refused Set: %v", err)
	}
	// The lock refused for its TTL was not taken.
	l := mustLock(t, h, h.Prefix+"l", time.Hour)
	if err := h.Locker.Unlock(ctx, l.Key, l.Token); err != nil {
		t.Errorf("Unlock: %v", err)
	}
}

func testTTLExpiry(t *testing.T, h Harness) {
	d := ttl(h)
	short, forever, long := h.Prefix+"short", h.Prefix+"forever", h.Prefix+"long"
	mustSet(t, h, short, []byte("s"), d)
	mustSet(t, h, forever, []byte("f"), 0)
	mustSet(t, h, long, []byte("l"), time.Hour)
	if fakeClock(h) {
		h.Advance(d - time.Millisecond)
		wantValue(t, h, short, []byte("s"))
	}
	pastExpiry(t, h, d)
	eventually(t, h, "short-TTL entry expires", func() error { return wantMiss(h, short) })
	wantValue(t, h, forever, []byte("f"))
	wantValue(t, h, long, []byte("l"))
	if fakeClock(h) {
		h.Advance(365 * 24 * time.Hour)
		wantValue(t, h, forever, []byte("f"))
		if err := wantMiss(h, long); err != nil {
			t.Error(err)
		}
	}
}

func testOverwriteResetsTTL(t *testing.T, h Harness) {
	d := ttl(h)
	key, key2 := h.Prefix+"reset", h.Prefix+"to-forever"
	if fakeClock(h) {
		mustSet(t, h, key, []byte("v1"), d)
		h.Advance(d * 8 / 10)
		mustSet(t, h, key, []byte("v2"), d)
		h.Advance(d * 8 / 10) // past the first TTL, within the second
		wantValue(t, h, key, []byte("v2"))
		h.Advance(d * 3 / 10)
		if err := wantMiss(h, key); err != nil {
			t.Error(err)
		}
	}
	// Overwriting with no expiry keeps the entry past the first TTL.
	mustSet(t, h, key2, []byte("v1"), d)
	mustSet(t, h, key2, []byte("v2"), 0)
	pastExpiry(t, h, d)
	wantValue(t, h, key2, []byte("v2"))
	// And overwriting with a TTL makes it expire again.
	mustSet(t, h, key2, []byte("v3"), d)
	pastExpiry(t, h, d)
	eventually(t, h, "overwritten entry expires", func() error { return wantMiss(h, key2) })
}

func testLockExclusive(t *testing.T, h Harness) {
	key := h.Prefix + "excl"
	l := mustLock(t, h, key, time.Hour)
	wantLocked(t, h, key)
	if fakeClock(h) {
		if want := h.Now().Add(time.Hour); !l.ExpiresAt.Equal(want) {
			t.Errorf("Lock ExpiresAt = %v, want now+1h = %v", l.ExpiresAt, want)
		}
	}
	if err := h.Locker.Unlock(t.Context(), key, l.Token); err != nil {
		t.Fatalf("Unlock(%q, %d): %v", key, l.Token, err)
	}
	l2 := mustLock(t, h, key, time.Hour)
	if l2.Token <= l.Token {
		t.Errorf("token after unlock = %d, want > %d", l2.Token, l.Token)
	}
}

func testLockExpiry(t *testing.T, h Harness) {
	key := h.Prefix + "expiry"
	d := ttl(h)
	l := mustLock(t, h, key, d)
	wantLocked(t, h, key)
	pastExpiry(t, h, d)
	var l2 cache.Lock
	eventually(t, h, "expired lock can be taken", func() error {
		var err error
		l2, err = h.Locker.Lock(context.Background(), key, time.Hour)
		return err
	})
	if l2.Token <= l.Token {
		t.Errorf("token after expiry = %d, want > %d", l2.Token, l.Token)
	}
	// The first holder lost the lock and cannot touch its successor's.
	if err := h.Locker.Unlock(t.Context(), key, l.Token); !errors.Is(err, cache.ErrNotLockHolder) {
		t.Errorf("Unlock by expired holder = %v, want ErrNotLockHolder", err)
	}
	if _, err := h.Locker.Extend(t.Context(), key, l.Token, time.Hour); !errors.Is(err, cache.ErrNotLockHolder) {
		t.Errorf("Extend by expired holder = %v, want ErrNotLockHolder", err)
	}
	wantLocked(t, h, key)
	if err := h.Locker.Unlock(t.Context(), key, l2.Token); err != nil {
		t.Errorf("Unlock by current holder: %v", err)
	}
}

func testFencing(t *testing.T, h Harness) {
	key := h.Prefix + "fence"
	var last uint64
	for i := range 20 {
		l := mustLock(t, h, key, time.Hour)
		if l.Token <= last {
			t.Fatalf("acquisition %d: token %d, want > %d", i, l.Token, last)
		}
		last = l.Token
		if err := h.Locker.Unlock(t.Context(), key, l.Token); err != nil {
			t.Fatalf("Unlock(%q, %d): %v", key, l.Token, err)
		}
		// Locking another key in between must not break monotonicity.
		o := mustLock(t, h, fmt.Sprintf("%sother-%d", h.Prefix, i), time.Hour)
		_ = h.Locker.Unlock(t.Context(), o.Key, o.Token)
	}
}

func testUnlockStale(t *testing.T, h Harness) {
	ctx := t.Context()
	key := h.Prefix + "stale"
	l := mustLock(t, h, key, time.Hour)
	for _, tok := range []uint64{0, l.Token - 1, l.Token + 1} {
		if err := h.Locker.Unlock(ctx, key, tok); !errors.Is(err, cache.ErrNotLockHolder) {
			t.Errorf("Unlock(%q, wrong token %d) = %v, want ErrNotLockHolder", key, tok, err)
		}
		if _, err := h.Locker.Extend(ctx, key, tok, time.Hour); !errors.Is(err, cache.ErrNotLockHolder) {
			t.Errorf("Extend(%q, wrong token %d) = %v, want ErrNotLockHolder", key, tok, err)
		}
	}
	wantLocked(t, h, key)
	if err := h.Locker.Unlock(ctx, key, l.Token); err != nil {
		t.Fatalf("Unlock(%q, %d): %v", key, l.Token, err)
	}
	// Unlocking twice: the token no longer holds the lock.
	if err := h.Locker.Unlock(ctx, key, l.Token); !errors.Is(err, cache.ErrNotLockHolder) {
		t.Errorf("second Unlock(%q, %d) = %v, want ErrNotLockHolder", key, l.Token, err)
	}
	// A stale token cannot release a later holder's lock.
	l2 := mustLock(t, h, key, time.Hour)
	if err := h.Locker.Unlock(ctx, key, l.Token); !errors.Is(err, cache.ErrNotLockHolder) {
		t.Errorf("Unlock(%q, stale %d) while %d holds = %v, want ErrNotLockHolder", key, l.Token, l2.Token, err)
	}
	wantLocked(t, h, key)
	if err := h.Locker.Unlock(ctx, "", l2.Token); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("Unlock with empty key = %v, want ErrInvalid", err)
	}
}

func testExtend(t *testing.T, h Harness) {
	ctx := t.Context()
	key := h.Prefix + "extend"
	d := ttl(h)
	l := mustLock(t, h, key, d)
	if fakeClock(h) {
		h.Advance(d * 8 / 10)
	}
	ext, err := h.Locker.Extend(ctx, key, l.Token, time.Hour)
	if err != nil {
		t.Fatalf("Extend(%q, %d): %v", key, l.Token, err)
	}
	if ext.Token != l.Token || ext.Key != key {
		t.Errorf("Extend = %+v, want Key %q Token %d", ext, key, l.Token)
	}
	if !ext.ExpiresAt.After(l.ExpiresAt) {
		t.Errorf("Extend ExpiresAt = %v, want after the original %v", ext.ExpiresAt, l.ExpiresAt)
	}
	if fakeClock(h) {
		if want := h.Now().Add(time.Hour); !ext.ExpiresAt.Equal(want) {
			t.Errorf("Extend ExpiresAt = %v, want now+1h = %v", ext.ExpiresAt, want)
		}
	}
	pastExpiry(t, h, d) // the original lease would have ended
	wantLocked(t, h, key)
	if _, err := h.Locker.Extend(ctx, key, l.Token, 0); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("Extend with ttl 0 = %v, want ErrInvalid", err)
	}
	// Shorten the lease, let it lapse: Extend can no longer revive it.
	if _, err := h.Locker.Extend(ctx, key, l.Token, d); err != nil {
		t.Fatalf("Extend(%q, %v): %v", key, d, err)
	}
	pastExpiry(t, h, d)
	eventually(t, h, "lapsed lease cannot be extended", func() error {
		_, err := h.Locker.Extend(context.Background(), key, l.Token, time.Hour)
		if !errors.Is(err, cache.ErrNotLockHolder) {
			return fmt.Errorf("Extend after expiry = %v, want ErrNotLockHolder", err)
		}
		return nil
	})
	l2 := mustLock(t, h, key, time.Hour)
	if l2.Token <= l.Token {
		t.Errorf("token after lapse = %d, want > %d", l2.Token, l.Token)
	}
}

func testLockKeysIndependent(t *testing.T, h Harness) {
	a := mustLock(t, h, h.Prefix+"a", time.Hour)
	b := mustLock(t, h, h.Prefix+"b", time.Hour)
	if err := h.Locker.Unlock(t.Context(), a.Key, a.Token); err != nil {
		t.Fatalf("Unlock a: %v", err)
	}
	wantLocked(t, h, b.Key)
	// Lock keys and cache keys are separate spaces.
	mustSet(t, h, b.Key, []byte("value"), 0)
	wantValue(t, h, b.Key, []byte("value"))
	wantLocked(t, h, b.Key)
	if err := h.Cache.Delete(t.Context(), b.Key); err != nil {
		t.Fatal(err)
	}
	wantLocked(t, h, b.Key)
}

// testLockUnderContention has many goroutines take one lock in turn and
// counts critical sections that overlap: there must be none, and the tokens
// seen in the critical section must increase.
func testLockUnderContention(t *testing.T, h Harness) {
	const workers, rounds = 16, 25
	key := h.Prefix + "contended"
	var (
		inside   atomic.Int32
		overlaps atomic.Int32
		mu       sync.Mutex
		tokens   []uint64
		wg       sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				l, err := cache.Acquire(t.Context(), h.Locker, key, time.Hour, time.Millisecond)
				if err != nil {
					errs <- fmt.Errorf("Acquire: %w", err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, l.Token)
				mu.Unlock()
				time.Sleep(10 * time.Microsecond)
				inside.Add(-1)
				if err := h.Locker.Unlock(t.Context(), key, l.Token); err != nil {
					errs <- fmt.Errorf("Unlock(%d): %w", l.Token, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d critical sections overlapped, want 0", n)
	}
	if len(tokens) != workers*rounds {
		t.Errorf("%d acquisitions, want %d", len(tokens), workers*rounds)
	}
	if !slices.IsSorted(tokens) || len(slices.Compact(slices.Clone(tokens))) != len(tokens) {
		t.Errorf("tokens in critical-section order are not strictly increasing: %v", tokens)
	}
}

func testAcquire(t *testing.T, h Harness) {
	key := h.Prefix + "acquire"
	l := mustLock(t, h, key, time.Hour)
	// Held for good: Acquire gives up when its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := cache.Acquire(ctx, h.Locker, key, time.Hour, 5*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cache.ErrLocked) {
		t.Errorf("Acquire of a held lock = %v, want DeadlineExceeded wrapping ErrLocked", err)
	}
	// Released meanwhile: Acquire gets it.
	done := make(chan error, 1)
	go func() {
		l2, err := cache.Acquire(t.Context(), h.Locker, key, time.Hour, 5*time.Millisecond)
		if err == nil && l2.Token <= l.Token {
			err = fmt.Errorf("token %d, want > %d", l2.Token, l.Token)
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := h.Locker.Unlock(t.Context(), key, l.Token); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Acquire after release: %v", err)
	}
	if _, err := cache.Acquire(t.Context(), h.Locker, key, time.Hour, 0); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("Acquire with retry 0 = %v, want ErrInvalid", err)
	}
}

// RunBenchmarks measures Get, Set and Lock+Unlock.
func RunBenchmarks(b *testing.B, newHarness HarnessMaker) {
	value := []byte(strings.Repeat("v", 256))
	b.Run("op=set/size=256B", func(b *testing.B) {
		h := newHarness(b)
		keys := benchKeys(h.Prefix, 1024)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := h.Cache.Set(b.Context(), keys[i%len(keys)], value, time.Hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("op=get/size=256B", func(b *testing.B) {
		h := newHarness(b)
		keys := benchKeys(h.Prefix, 1024)
		for _, k := range keys {
			if err := h.Cache.Set(b.Context(), k, value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := h.Cache.Get(b.Context(), keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("op=get/parallel", func(b *testing.B) {
		h := newHarness(b)
		keys := benchKeys(h.Prefix, 1024)
		for _, k := range keys {
			if err := h.Cache.Set(b.Context(), k, value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := h.Cache.Get(context.Background(), keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("op=lock+unlock", func(b *testing.B) {
		h := newHarness(b)
		key := h.Prefix + "bench-lock"
		b.ReportAllocs()
		for b.Loop() {
			l, err := h.Locker.Lock(b.Context(), key, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Locker.Unlock(b.Context(), key, l.Token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sbench-%d", prefix, i)
	}
	return keys
}
