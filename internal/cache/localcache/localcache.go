// Package localcache is the in-process backend of the cache store: a
// cache.Cache on github.com/maypok86/otter/v2 (W-TinyLFU eviction bounded in
// bytes, per-entry expiry) and a cache.Locker for one process. It is the
// embedded default; its state is lost when the process exits.
package localcache

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/vigil-iot/vigil/internal/cache"
)

// DefaultMaxBytes bounds the cache when Options.MaxBytes is 0.
const DefaultMaxBytes = 64 << 20

// entryOverhead is the bookkeeping charged to each entry on top of its key
// and value bytes, so that many tiny entries are bounded too.
const entryOverhead = 64

// sweepEvery is how many Lock calls pass between sweeps of expired leases.
const sweepEvery = 1024

// Options configure a Cache. The zero value is valid.
type Options struct {
	// MaxBytes bounds the sum over entries of len(key)+len(value)+64;
	// DefaultMaxBytes when 0. Past it, entries are evicted (W-TinyLFU).
	MaxBytes uint64
	// Now is the clock for expiry of entries and leases; time.Now when nil.
	Now func() time.Time
}

var (
	_ cache.Cache  = (*Cache)(nil)
	_ cache.Locker = (*Cache)(nil)
)

// Cache is the in-process cache and locker. It starts no goroutines: otter
// is given a synchronous executor and a clock without ticks, so expired
// entries are removed during reads and writes (and are never returned).
// Close releases it.
type Cache struct {
	c        *otter.Cache[string, entry]
	now      func() time.Time
	maxBytes uint64
	closed   atomic.Bool

	mu     sync.Mutex
	leases map[string]lease
	fence  uint64 // last token handed out, shared by all keys
	locks  uint64 // Lock calls since the last sweep
}

type entry struct {
	data []byte
	ttl  time.Duration // 0: no expiry
}

type lease struct {
	token     uint64
	expiresAt time.Time
}

// clock adapts an injected Now to otter's Clock. It has no ticks, so otter
// runs no periodic clean-up goroutine.
type clock struct{ now func() time.Time }

func (c clock) NowNano() int64                    { return c.now().UnixNano() }
func (clock) Tick(time.Duration) <-chan time.Time { return nil }

// New returns an empty Cache configured by opts.
func New(opts Options) (*Cache, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := otter.New(&otter.Options[string, entry]{
		MaximumWeight: opts.MaxBytes,
		Weigher: func(key string, e entry) uint32 {
			return uint32(min(weight(key, e.data), math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.ttl == 0 {
				return time.Duration(math.MaxInt64)
			}
			return e.Value.ttl
		}),
		Clock:    clock{now: opts.Now},
		Executor: func(fn func()) { fn() },
	})
	if err != nil {
		return nil, fmt.Errorf("new local cache: %w", err)
	}
	return &Cache{
		c:        c,
		now:      opts.Now,
		maxBytes: opts.MaxBytes,
		leases:   make(map[string]lease),
	}, nil
}

func weight(key string, data []byte) uint64 {
	return uint64(len(key)) + uint64(len(data)) + entryOverhead
}

// Close drops every entry and lease. It is idempotent; other methods return
// cache.ErrClosed afterwards.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.c.InvalidateAll()
	c.c.StopAllGoroutines()
	c.mu.Lock()
	clear(c.leases)
	c.mu.Unlock()
	return nil
}

func (c *Cache) check(ctx context.Context, op, key string) error {
	if c.closed.Load() {
		return fmt.Errorf("%s %q: %w", op, key, cache.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	if err := cache.ValidateKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Get implements cache.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.check(ctx, "get", key); err != nil {
		return nil, err
	}
	e, ok := c.c.GetIfPresent(key)
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, cache.ErrNotFound)
	}
	return append(make([]byte, 0, len(e.data)), e.data...), nil
}

// Set implements cache.Cache. A value whose key and bytes exceed MaxBytes
// is refused with cache.ErrInvalid.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.check(ctx, "set", key); err != nil {
		return err
	}
	if err := cache.ValidateTTL(key, ttl); err != nil {
		return fmt.Errorf("set: %w", err)
	}
	if w := weight(key, value); w > c.maxBytes || w > math.MaxUint32 {
		return fmt.Errorf("set %q: %w: entry of %d bytes exceeds the cache size of %d", key, cache.ErrInvalid, w, min(c.maxBytes, math.MaxUint32))
	}
	c.c.Set(key, entry{data: append(make([]byte, 0, len(value)), value...), ttl: ttl})
	return nil
}

// Delete implements cache.Cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.check(ctx, "delete", key); err != nil {
		return err
	}
	c.c.Invalidate(key)
	return nil
}

// Lock implements cache.Locker. Tokens come from one counter shared by all
// keys, so they increase per key as the contract asks.
func (c *Cache) Lock(ctx context.Context, key string, ttl time.Duration) (cache.Lock, error) {
	if err := c.check(ctx, "lock", key); err != nil {
		return cache.Lock{}, err
	}
	if err := cache.ValidateLockTTL(key, ttl); err != nil {
		return cache.Lock{}, fmt.Errorf("lock: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if l, ok := c.leases[key]; ok && now.Before(l.expiresAt) {
		return cache.Lock{}, fmt.Errorf("lock %q: %w until %v", key, cache.ErrLocked, l.expiresAt)
	}
	c.sweepLocked(now)
	c.fence++
	l := lease{token: c.fence, expiresAt: now.Add(ttl)}
	c.leases[key] = l
	return cache.Lock{Key: key, Token: l.token, ExpiresAt: l.expiresAt}, nil
}

// sweepLocked drops expired leases every sweepEvery calls, so locks taken
// and never released do not accumulate.
func (c *Cache) sweepLocked(now time.Time) {
	c.locks++
	if c.locks < sweepEvery {
		return
	}
	c.locks = 0
	for k, l := range c.leases {
		if !now.Before(l.expiresAt) {
			delete(c.leases, k)
		}
	}
}

// holderLocked returns the live lease of key if token holds it.
func (c *Cache) holderLocked(op, key string, token uint64) (lease, error) {
	l, ok := c.leases[key]
	switch {
	case !ok:
		return lease{}, fmt.Errorf("%s %q token %d: %w: lock is free", op, key, token, cache.ErrNotLockHolder)
	case l.token != token:
		return lease{}, fmt.Errorf("%s %q token %d: %w: held with token %d", op, key, token, cache.ErrNotLockHolder, l.token)
	case !c.now().Before(l.expiresAt):
		return lease{}, fmt.Errorf("%s %q token %d: %w: lease expired at %v", op, key, token, cache.ErrNotLockHolder, l.expiresAt)
	}
	return l, nil
}

// Unlock implements cache.Locker.
func (c *Cache) Unlock(ctx context.Context, key string, token uint64) error {
	if err := c.check(ctx, "unlock", key); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.holderLocked("unlock", key, token); err != nil {
		return err
	}
	delete(c.leases, key)
	return nil
}

// Extend implements cache.Locker.
func (c *Cache) Extend(ctx context.Context, key string, token uint64, ttl time.Duration) (cache.Lock, error) {
	if err := c.check(ctx, "extend", key); err != nil {
		return cache.Lock{}, err
	}
	if err := cache.ValidateLockTTL(key, ttl); err != nil {
		return cache.Lock{}, fmt.Errorf("extend: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.holderLocked("extend", key, token)
	if err != nil {
		return cache.Lock{}, err
	}
	l.expiresAt = c.now().Add(ttl)
	c.leases[key] = l
	return cache.Lock{Key: key, Token: l.token, ExpiresAt: l.expiresAt}, nil
}
