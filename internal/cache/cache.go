// Package cache defines Vigil's cache and lock store: a byte-valued cache
// with per-entry TTL (loaded models, inference state, rate limits) and a
// Locker handing out leases with fencing tokens (distributed locks). The
// in-process backend is localcache; Redis comes next (rediscache). The
// conformance suite every backend runs is in package cachetest.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Error kinds. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound: the key has no value, or its value expired.
	ErrNotFound = errors.New("cache entry not found")
	// ErrLocked: the lock is held by someone else and has not expired.
	ErrLocked = errors.New("lock held by another owner")
	// ErrNotLockHolder: the token does not hold the lock any more: the lock
	// expired, was released, or was taken by a later acquisition.
	ErrNotLockHolder = errors.New("not the lock holder")
	// ErrInvalid: an empty or oversized key, a negative TTL, a lock TTL
	// that is not positive, or a value larger than the backend accepts.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the backend has been closed.
	ErrClosed = errors.New("cache closed")
	// ErrUnavailable: the backend cannot be reached; the operation may be
	// retried.
	ErrUnavailable = errors.New("cache backend unavailable")
)

// MaxKeyLen is the longest key any backend must accept, in bytes.
const MaxKeyLen = 1024

// Cache is a byte-valued cache with per-entry expiry.
//
// Contract, for every backend:
//   - Concurrency: all methods are safe for concurrent use, also by several
//     processes sharing one server.
//   - TTL: Set(ctx, k, v, ttl) stores v until ttl has passed; ttl 0 means
//     no expiry; a negative ttl is ErrInvalid. A value is never returned
//     after its expiry (Get reports ErrNotFound). Set on an existing key
//     replaces value and TTL (the clock restarts).
//   - Eviction: a cache may drop any entry before its expiry to stay within
//     its size limit; a cache is not a store of record.
//   - Ownership: Set copies value; the slice Get returns belongs to the
//     caller. Neither aliases the cache's memory.
//   - Errors: Get of a missing or expired key returns ErrNotFound; Delete of
//     a missing key returns nil. Other errors wrap ErrInvalid, ErrClosed or
//     ErrUnavailable, or the context's error.
//   - Keys are 1 to MaxKeyLen bytes. Backends shared between processes put
//     callers' keys under their own namespace prefix.
type Cache interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores a copy of value under key for ttl (0: no expiry).
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Lock is a lease on a lock key.
type Lock struct {
	Key string
	// Token is the fencing token of this acquisition: strictly greater than
	// the token of every earlier acquisition of Key. Pass it to the
	// resource the lock protects, which refuses writes carrying a token
	// lower than one it has already seen: a holder whose lease expired
	// while it was paused cannot then overwrite its successor's work.
	Token uint64
	// ExpiresAt is when the lease ends unless extended, by the backend's
	// clock.
	ExpiresAt time.Time
}

// Locker hands out exclusive, expiring leases on keys.
//
// Contract, for every backend:
//   - Exclusivity: at any instant of the backend's clock at most one
//     unexpired lease exists per key.
//   - TTL: a lease lasts ttl (> 0, else ErrInvalid) from its acquisition or
//     last Extend; after that the lock is free to the next Lock even if the
//     holder never unlocked. A holder must Extend well before ExpiresAt,
//     and must treat its work as unprotected once the lease may have ended.
//   - Fencing: tokens are strictly increasing per key across all
//     acquisitions, for the life of the backend's data (a Redis server),
//     and never 0.
//   - Lock does not wait: a held lock returns ErrLocked at once (use
//     Acquire to wait).
//   - Unlock and Extend with a token that no longer holds the lock (the
//     lease expired, was unlocked, or a later acquisition took it) return
//     ErrNotLockHolder and change nothing.
//   - Lock keys are a namespace of their own: Cache entries with the same
//     key neither block nor are touched by locks.
//   - Concurrency: all methods are safe for concurrent use, also by several
//     processes sharing one server.
type Locker interface {
	// Lock acquires key for ttl, or returns ErrLocked.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
	// Unlock releases the lease held with token.
	Unlock(ctx context.Context, key string, token uint64) error
	// Extend makes the lease held with token last ttl from now, and returns
	// it with its new ExpiresAt (same Token).
	Extend(ctx context.Context, key string, token uint64, ttl time.Duration) (Lock, error)
}

// Acquire calls l.Lock until it succeeds, waiting about retry (jittered by
// ±50% so contenders spread out) after each ErrLocked. It returns the
// context's error, wrapped with the last ErrLocked, when ctx ends first,
// and any other error at once. retry must be positive.
func Acquire(ctx context.Context, l Locker, key string, ttl, retry time.Duration) (Lock, error) {
	if retry <= 0 {
		return Lock{}, fmt.Errorf("acquire %q: %w: retry interval %v is not positive", key, ErrInvalid, retry)
	}
	var locked error // the last ErrLocked
	for {
		lk, err := l.Lock(ctx, key, ttl)
		switch {
		case err == nil:
			return lk, nil
		case errors.Is(err, ErrLocked):
			locked = err
		case locked != nil && ctx.Err() != nil:
			return Lock{}, fmt.Errorf("acquire %q: %w (%w)", key, ctx.Err(), locked)
		default:
			return Lock{}, err
		}
		t := time.NewTimer(retry/2 + rand.N(retry+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return Lock{}, fmt.Errorf("acquire %q: %w (%w)", key, ctx.Err(), locked)
		case <-t.C:
		}
	}
}

// ValidateKey reports, wrapping ErrInvalid, whether key is empty or longer
// than MaxKeyLen. Backends call it first.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key %.40q... is %d bytes, longer than the limit of %d", ErrInvalid, key, len(key), MaxKeyLen)
	}
	return nil
}

// ValidateTTL reports, wrapping ErrInvalid, a negative cache TTL.
func ValidateTTL(key string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("%w: key %q: negative ttl %v", ErrInvalid, key, ttl)
	}
	return nil
}

// ValidateLockTTL reports, wrapping ErrInvalid, a lock TTL that is not
// positive.
func ValidateLockTTL(key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: lock %q: ttl %v is not positive", ErrInvalid, key, ttl)
	}
	return nil
}
