// Package rediscache is the Redis backend of the cache store: a cache.Cache
// and cache.Locker shared by every Vigil process using one Redis server.
//
// Layout, under the namespace prefix given in Options:
//
//	<prefix>c:<key>  cache value (SET ... PX ttl, no PX for ttl 0)
//	<prefix>l:<key>  lock lease; its value is the decimal fencing token
//	<prefix>f:<key>  fencing counter of the lock (INCR, never expires)
//
// Lock, Unlock and Extend are Lua scripts, so the check of the lease and the
// change to it are one atomic step on the server. Tokens come from the
// per-key counter, which outlives the leases, so they increase across all
// acquisitions for the life of the server's data. ExpiresAt is computed
// from the server's clock (TIME), the clock that ends the lease.
//
// The connection pool is go-redis's own; a Cache starts no goroutines of
// its own beyond what the pool needs, and Close stops them.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-iot/vigil/internal/cache"
)

// MaxValueLen is the largest value Set accepts: Redis's string limit.
const MaxValueLen = 512 << 20

// Options configure a Cache.
type Options struct {
	// Prefix namespaces every key this Cache writes (e.g. "vigil/").
	// Processes that must see each other's entries and locks use the same
	// prefix; may be empty.
	Prefix string
	// Logger receives connection events; slog.DiscardHandler when nil.
	Logger *slog.Logger
}

// Cache is a cache.Cache and cache.Locker on a Redis server.
type Cache struct {
	client *redis.Client
	prefix string
	logger *slog.Logger
	addr   string
	closed atomic.Bool
}

var (
	_ cache.Cache  = (*Cache)(nil)
	_ cache.Locker = (*Cache)(nil)
)

// Open connects to the Redis server at url (redis://[user:pass@]host:port/db,
// or rediss:// for TLS) and checks it answers. A malformed url is
// cache.ErrInvalid; a server that cannot be reached is cache.ErrUnavailable.
func Open(ctx context.Context, url string, opts Options) (*Cache, error) {
	ropts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("open redis cache %q: %w: %w", redactURL(url), cache.ErrInvalid, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		client: redis.NewClient(ropts),
		prefix: opts.Prefix,
		logger: logger,
		addr:   ropts.Addr,
	}
	if err := c.Ping(ctx); err != nil {
		_ = c.client.Close()
		return nil, fmt.Errorf("open redis cache at %s db %d: %w", ropts.Addr, ropts.DB, err)
	}
	logger.Info("redis cache connected", "addr", ropts.Addr, "db", ropts.DB, "prefix", opts.Prefix)
	return c, nil
}

// redactURL drops the credentials from url for error messages.
func redactURL(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return "<unparsable url>"
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = "***@" + rest[i+1:]
	}
	return scheme + "://" + rest
}

// Ping checks the server answers; failures wrap cache.ErrUnavailable.
func (c *Cache) Ping(ctx context.Context) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("ping redis %s: %w", c.addr, err)
	}
	if err := c.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis %s: %w", c.addr, c.classify(ctx, err))
	}
	return nil
}

// Close releases the connection pool. Later calls return cache.ErrClosed;
// closing twice is not an error.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if err := c.client.Close(); err != nil {
		return fmt.Errorf("close redis cache %s: %w", c.addr, err)
	}
	return nil
}

func (c *Cache) check() error {
	if c.closed.Load() {
		return cache.ErrClosed
	}
	return nil
}

func (c *Cache) valueKey(key string) string { return c.prefix + "c:" + key }
func (c *Cache) leaseKey(key string) string { return c.prefix + "l:" + key }
func (c *Cache) fenceKey(key string) string { return c.prefix + "f:" + key }

// classify turns a go-redis error into the store's error kinds: the
// context's error when ctx ended, ErrClosed for a closed client,
// ErrUnavailable for connection failures and transient server states. Any
// other server reply is returned as is (wrapped by the caller).
func (c *Cache) classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w (%w)", ctxErr, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: %w", cache.ErrClosed, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		// Replies that mean "not now" rather than "wrong request": the
		// server is loading, busy, failing over or out of memory.
		for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "OOM"} {
			if redis.HasErrorPrefix(err, p) {
				return fmt.Errorf("%w: %w", cache.ErrUnavailable, err)
			}
		}
		return err
	}
	c.logger.Warn("redis cache unavailable", "addr", c.addr, "err", err)
	return fmt.Errorf("%w: %w", cache.ErrUnavailable, err)
}

// Get returns a copy of the value stored under key, or cache.ErrNotFound.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.precheck(key); err != nil {
		return nil, fmt.Errorf("cache get: %w", err)
	}
	v, err := c.client.Get(ctx, c.valueKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("cache get %q: %w", key, cache.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cache get %q: %w", key, c.classify(ctx, err))
	}
	return v, nil
}

// Set stores value under key for ttl (0: no expiry), replacing any earlier
// value and TTL.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.precheck(key); err != nil {
		return fmt.Errorf("cache set: %w", err)
	}
	if err := cache.ValidateTTL(key, ttl); err != nil {
		return fmt.Errorf("cache set: %w", err)
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("cache set %q: %w: value of %d bytes exceeds the limit of %d", key, cache.ErrInvalid, len(value), MaxValueLen)
	}
	// go-redis writes value to the connection before Set returns and keeps
	// no reference to it, so the caller may reuse the slice.
	if err := c.client.Set(ctx, c.valueKey(key), value, millis(ttl)).Err(); err != nil {
		return fmt.Errorf("cache set %q: %w", key, c.classify(ctx, err))
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.precheck(key); err != nil {
		return fmt.Errorf("cache delete: %w", err)
	}
	if err := c.client.Del(ctx, c.valueKey(key)).Err(); err != nil {
		return fmt.Errorf("cache delete %q: %w", key, c.classify(ctx, err))
	}
	return nil
}

func (c *Cache) precheck(key string) error {
	if err := cache.ValidateKey(key); err != nil {
		return err
	}
	return c.check()
}

// millis rounds ttl up to whole milliseconds (PX granularity), so a
// positive TTL never becomes 0 (no expiry).
func millis(ttl time.Duration) time.Duration {
	if r := ttl % time.Millisecond; r != 0 {
		return ttl - r + time.Millisecond
	}
	return ttl
}

// lockScript takes the lease if it is free: KEYS[1] lease, KEYS[2] fencing
// counter, ARGV[1] ttl in ms. Returns {token, server seconds, server µs},
// or {0} when the lease is held.
var lockScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return {0}
end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], tok, 'PX', ARGV[1])
local now = redis.call('TIME')
return {tok, tonumber(now[1]), tonumber(now[2])}
`)

// unlockScript deletes the lease if it holds token ARGV[1]: 1 if so, 0 if not.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// extendScript sets the lease's TTL to ARGV[2] ms if it holds token ARGV[1].
// Returns {1, server seconds, server µs}, or {0}.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	local now = redis.call('TIME')
	return {1, tonumber(now[1]), tonumber(now[2])}
end
return {0}
`)

// Lock acquires key for ttl, or returns cache.ErrLocked.
func (c *Cache) Lock(ctx context.Context, key string, ttl time.Duration) (cache.Lock, error) {
	if err := c.lockPrecheck(key, ttl); err != nil {
		return cache.Lock{}, fmt.Errorf("lock: %w", err)
	}
	ms := millis(ttl)
	res, err := lockScript.Run(ctx, c.client, []string{c.leaseKey(key), c.fenceKey(key)}, ms.Milliseconds()).Int64Slice()
	if err != nil {
		return cache.Lock{}, fmt.Errorf("lock %q: %w", key, c.classify(ctx, err))
	}
	if len(res) == 1 && res[0] == 0 {
		return cache.Lock{}, fmt.Errorf("lock %q: %w", key, cache.ErrLocked)
	}
	if len(res) != 3 || res[0] <= 0 {
		return cache.Lock{}, fmt.Errorf("lock %q: unexpected script reply %v", key, res)
	}
	return cache.Lock{Key: key, Token: uint64(res[0]), ExpiresAt: time.Unix(res[1], res[2]*1000).Add(ms)}, nil
}

// Unlock releases the lease held with token, or returns
// cache.ErrNotLockHolder and changes nothing.
func (c *Cache) Unlock(ctx context.Context, key string, token uint64) error {
	if err := c.precheck(key); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	n, err := unlockScript.Run(ctx, c.client, []string{c.leaseKey(key)}, strconv.FormatUint(token, 10)).Int64()
	if err != nil {
		return fmt.Errorf("unlock %q token %d: %w", key, token, c.classify(ctx, err))
	}
	if n != 1 {
		return fmt.Errorf("unlock %q token %d: %w", key, token, cache.ErrNotLockHolder)
	}
	return nil
}

// Extend makes the lease held with token last ttl from now, or returns
// cache.ErrNotLockHolder and changes nothing.
func (c *Cache) Extend(ctx context.Context, key string, token uint64, ttl time.Duration) (cache.Lock, error) {
	if err := c.lockPrecheck(key, ttl); err != nil {
		return cache.Lock{}, fmt.Errorf("extend: %w", err)
	}
	ms := millis(ttl)
	res, err := extendScript.Run(ctx, c.client, []string{c.leaseKey(key)}, strconv.FormatUint(token, 10), ms.Milliseconds()).Int64Slice()
	if err != nil {
		return cache.Lock{}, fmt.Errorf("extend %q token %d: %w", key, token, c.classify(ctx, err))
	}
	if len(res) == 1 && res[0] == 0 {
		return cache.Lock{}, fmt.Errorf("extend %q token %d: %w", key, token, cache.ErrNotLockHolder)
	}
	if len(res) != 3 {
		return cache.Lock{}, fmt.Errorf("extend %q token %d: unexpected script reply %v", key, token, res)
	}
	return cache.Lock{Key: key, Token: token, ExpiresAt: time.Unix(res[1], res[2]*1000).Add(ms)}, nil
}

func (c *Cache) lockPrecheck(key string, ttl time.Duration) error {
	if err := cache.ValidateKey(key); err != nil {
		return err
	}
	if err := cache.ValidateLockTTL(key, ttl); err != nil {
		return err
	}
	return c.check()
}
