package auth

import (
	"context"
	"sync"
	"time"
)

// Cache defaults.
const (
	// DefaultCacheTTL is how long a Cache trusts a token it looked up: a
	// token revoked in another process (or directly in the store) is
	// refused at most this long after the revocation.
	DefaultCacheTTL = 10 * time.Second
	// DefaultTouchEvery is the least interval between two recorded uses of
	// one token.
	DefaultTouchEvery = time.Minute
	// DefaultCacheEntries bounds the number of tokens a Cache holds.
	DefaultCacheEntries = 10000
)

// CacheOptions configure a Cache. The zero value is usable.
type CacheOptions struct {
	// TTL is how long a looked-up token is served from memory; 0 means
	// DefaultCacheTTL.
	TTL time.Duration
	// Touch, when not nil, records that token id was used at at (e.g.
	// appdb.TokenRepository.Touch). It is called from RecordUse, at most
	// once per TouchEvery per token, synchronously; its errors are ignored
	// (recording use is best effort and never refuses a request).
	Touch func(ctx context.Context, id string, at time.Time) error
	// TouchEvery is the least interval between two Touch calls for one
	// token; 0 means DefaultTouchEvery.
	TouchEvery time.Duration
	// MaxEntries bounds the cache; 0 means DefaultCacheEntries. When full,
	// expired entries are dropped, and if none expired, all of them.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache is a TokenStore that remembers, for a TTL, the tokens another
// TokenStore found, so that the store is not queried on every request.
// Unknown hashes and store failures are not cached. A revocation therefore
// takes effect within the TTL, or at once in this process when the revoker
// calls Forget (Verifier.Forget). It is safe for concurrent use and starts no
// goroutines.
type Cache struct {
	store TokenStore
	o     CacheOptions

	mu      sync.Mutex
	byHash  map[string]cacheEntry
	touched map[string]time.Time // token ID -> last Touch
}

type cacheEntry struct {
	tok     Token
	expires time.Time
}

var (
	_ TokenStore  = (*Cache)(nil)
	_ UseRecorder = (*Cache)(nil)
	_ Forgetter   = (*Cache)(nil)
)

// NewCache returns a Cache over store.
func NewCache(store TokenStore, o CacheOptions) *Cache {
	if o.TTL <= 0 {
		o.TTL = DefaultCacheTTL
	}
	if o.TouchEvery <= 0 {
		o.TouchEvery = DefaultTouchEvery
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultCacheEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{store: store, o: o, byHash: map[string]cacheEntry{}, touched: map[string]time.Time{}}
}

// TokenByHash implements TokenStore: from memory while the entry is fresh,
// else from the underlying store.
func (c *Cache) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	now := c.o.Now()
	c.mu.Lock()
	e, ok := c.byHash[string(hash)]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.tok, nil
	}
	t, err := c.store.TokenByHash(ctx, hash)
	if err != nil {
		return Token{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= c.o.MaxEntries {
		for k, e := range c.byHash {
			if !now.Before(e.expires) {
				delete(c.byHash, k)
			}
		}
		if len(c.byHash) >= c.o.MaxEntries {
			clear(c.byHash)
		}
	}
	c.byHash[string(hash)] = cacheEntry{tok: t, expires: now.Add(c.o.TTL)}
	return t, nil
}

// RecordUse implements UseRecorder: it calls Touch when the token was not
// touched in the last TouchEvery.
func (c *Cache) RecordUse(ctx context.Context, id string, at time.Time) {
	if c.o.Touch == nil {
		return
	}
	c.mu.Lock()
	last, ok := c.touched[id]
	due := !ok || at.Sub(last) >= c.o.TouchEvery
	if due {
		if len(c.touched) >= c.o.MaxEntries {
			clear(c.touched)
		}
		c.touched[id] = at
	}
	c.mu.Unlock()
	if due {
		_ = c.o.Touch(ctx, id, at) // best effort, see CacheOptions.Touch
	}
}

// Forget implements Forgetter: it drops the cached token with this ID, so
// that the next request with it reads the store again.
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.byHash {
		if e.tok.ID == id {
			delete(c.byHash, k)
		}
	}
}

// UseRecorder is implemented by a TokenStore that records token use. The
// Verifier calls RecordUse after every successful verification; it must be
// cheap and never fail the request.
type UseRecorder interface {
	RecordUse(ctx context.Context, id string, at time.Time)
}

// Forgetter is implemented by a TokenStore that caches tokens: Forget drops
// what it remembers of the token with this ID.
type Forgetter interface {
	Forget(id string)
}

// Forget tells the Verifier's store, when it caches tokens (Forgetter), to
// drop the token with this ID, so that a revocation made in this process
// takes effect at once rather than within the cache TTL.
func (v *Verifier) Forget(id string) {
	if f, ok := v.store.(Forgetter); ok {
		f.Forget(id)
	}
}
