// Package embedts is Vigil's embedded time-series backend: a
// timeseries.Repository over the Prometheus TSDB library, storing everything
// under one directory (WAL, head, compacted blocks).
//
// # Mapping
//
// A series is stored as one TSDB series whose labels are
//
//	__name__  = measurement
//	__field__ = field
//	<tag key> = tag value, for every tag
//
// Tag keys that start with "_" are stored with the prefix "_u" ("_x" becomes
// "_u_x"), so no user tag can collide with the reserved "__name__" and
// "__field__" labels (nor any other "__" label of the library), and the
// mapping is reversible. Empty tag keys, empty tag values and duplicate tag
// keys are rejected with timeseries.ErrInvalid: the library treats an empty
// label value as a missing label, which would not round-trip.
//
// # Rules the library does not enforce, enforced here
//
//   - (series, timestamp) is unique and the first write wins: a rewrite with a
//     different value (compared by bit pattern after NaN normalisation) is
//     rejected with timeseries.ErrConflict, also for out-of-order timestamps
//     and timestamps already compacted into blocks, which the library would
//     accept and then return mixed.
//   - A point older than Options.OutOfOrderWindow or newer than
//     Options.MaxFutureSkew (relative to Options.Now) is rejected with
//     timeseries.ErrOutOfWindow. Rejecting future timestamps matters: the
//     library counts retention from the newest block.
//   - NaN of any bit pattern (including Prometheus' StaleNaN) is stored as the
//     canonical math.NaN().
//   - Query ranges are half-open [start, end) (the library's are closed).
//
// # Durability
//
// WritePoints returns after the library committed the batch, which writes
// the WAL record to the segment file with write(2) before returning. A
// process crash (kill -9) after WritePoints returned therefore loses nothing:
// the bytes are in the kernel's page cache. The library does not fsync on
// commit (only when a segment is closed), so a power loss or kernel crash can
// lose the last few seconds of acknowledged writes; set Options.SyncWrites to
// fsync the WAL segment after every batch when that matters (at a large cost
// in throughput on most disks).
//
// # Concurrency
//
// Writers are serialised by a mutex (the duplicate check and the append
// must be atomic); readers run concurrently with each other and with
// writers. The library starts its own background goroutines (compaction,
// head GC) in Open; Close stops them.
package embedts

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Reserved label names and the escape prefix of user tag keys.
const (
	measurementLabel = labels.MetricName // "__name__"
	fieldLabel       = "__field__"
	tagEscapePrefix  = "_u"
)

// Defaults of Options.
const (
	DefaultOutOfOrderWindow = 24 * time.Hour
	DefaultMaxFutureSkew    = 10 * time.Minute
)

// ErrLocked is returned by Open when another process (or another Store in
// this process) holds the data directory.
var ErrLocked = errors.New("data directory is locked by another process")

// Options configures a Store. The zero value is a usable configuration.
type Options struct {
	// OutOfOrderWindow is how far in the past (relative to Now) a point may
	// be. Zero means DefaultOutOfOrderWindow.
	OutOfOrderWindow time.Duration
	// Retention is how long data is kept; zero keeps it forever. Enforcing
	// it precisely is the application's job (DeleteBefore on a schedule); it
	// is also given to the library, which then drops whole blocks that are
	// entirely older than Retention counted from the newest block.
	Retention time.Duration
	// MaxFutureSkew is how far in the future (relative to Now) a point may
	// be. Zero means DefaultMaxFutureSkew.
	MaxFutureSkew time.Duration
	// SyncWrites fsyncs the WAL after every WritePoints, so that
	// acknowledged points also survive a power loss. Off by default.
	SyncWrites bool
	// Logger receives the library's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the library's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the embedded time-series repository. It is safe for concurrent
// use.
type Store struct {
	dir    string
	db     *tsdb.DB
	now    func() time.Time
	window int64 // ms
	skew   int64 // ms
	sync   bool

	// life guards closed: every operation holds it for reading, Close for
	// writing.
	life   sync.RWMutex
	closed bool

	// mu serialises writers and guards everything below.
	mu       sync.Mutex
	cache    map[string]*seriesEntry // by cacheKey
	keyBuf   []byte
	gen      uint64
	cutoff   int64 // the last DeleteBefore cutoff; older points are rejected
	ents     []*seriesEntry
	accepted []bool
}

// seriesEntry is the cached state of one series. Guarded by Store.mu.
type seriesEntry struct {
	series telemetry.Series // tags sorted
	lset   labels.Labels
	ref    storage.SeriesRef

	// known reports whether maxT is valid: an upper bound of the timestamps
	// of every stored sample of the series.
	known bool
	maxT  int64

	// Per-batch state, valid when gen == Store.gen.
	gen      uint64
	batchMax int64             // highest timestamp accepted in this batch
	qmin     int64             // lowest timestamp to look up in storage
	qmax     int64             // highest timestamp to look up in storage
	check    bool              // needs a storage lookup
	existing map[int64]float64 // stored samples in [qmin, qmax]
	pending  map[int64]float64 // points accepted in this batch (built lazily)
}

var _ timeseries.Repository = (*Store)(nil)

// Open opens (creating if needed) the store in dir. It fails with an error
// wrapping ErrLocked when dir is in use.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("embedts: open: empty directory: %w", timeseries.ErrInvalid)
	}
	if opts.OutOfOrderWindow < 0 || opts.MaxFutureSkew < 0 || opts.Retention < 0 {
		return nil, fmt.Errorf("embedts: open %q: negative duration in options: %w", dir, timeseries.ErrInvalid)
	}
	if opts.OutOfOrderWindow == 0 {
		opts.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if opts.MaxFutureSkew == 0 {
		opts.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedts: open %q: %w", dir, err)
	}

	to := tsdb.DefaultOptions()
	// The library's window counts from the newest sample in the head, which
	// can be up to MaxFutureSkew ahead of Now: widen it so that the library
	// never rejects a point this package accepted.
	to.OutOfOrderTimeWindow = (opts.OutOfOrderWindow + opts.MaxFutureSkew).Milliseconds()
	to.RetentionDuration = opts.Retention.Milliseconds()
	// With MaxBlockDuration equal to the 2h minimum, blocks never merge.
	to.MaxBlockDuration = maxBlockDuration(opts.Retention).Milliseconds()
	to.EnableOverlappingCompaction = true

	db, err := tsdb.Open(dir, opts.Logger, opts.Registerer, to, nil)
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock DB directory") {
			return nil, fmt.Errorf("embedts: open %q: %w (lock file %s): %v", dir, ErrLocked, filepath.Join(dir, "lock"), err)
		}
		return nil, fmt.Errorf("embedts: open %q: %w", dir, err)
	}
	return &Store{
		dir:    dir,
		db:     db,
		now:    opts.Now,
		window: opts.OutOfOrderWindow.Milliseconds(),
		skew:   opts.MaxFutureSkew.Milliseconds(),
		sync:   opts.SyncWrites,
		cache:  make(map[string]*seriesEntry),
		cutoff: math.MinInt64,
	}, nil
}

// maxBlockDuration follows Prometheus: a tenth of the retention, between
// the 2h minimum block and 31 days.
func maxBlockDuration(retention time.Duration) time.Duration {
	const lo, hi = 2 * time.Hour, 31 * 24 * time.Hour
	if retention == 0 {
		return hi
	}
	return min(max(retention/10, lo), hi)
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes and closes the store. It is idempotent.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedts: close %q: %w", s.dir, err)
	}
	return nil
}

// acquire takes the read side of the lifecycle lock; it fails with
// ErrClosed after Close.
func (s *Store) acquire(op string) error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return fmt.Errorf("embedts: %s: %w", op, timeseries.ErrClosed)
	}
	return nil
}

func (s *Store) release() { s.life.RUnlock() }

// canonicalNaN is the one NaN bit pattern stored.
var canonicalNaN = math.Float64frombits(0x7ff8000000000001)

func normalise(v float64) float64 {
	if v != v {
		return canonicalNaN
	}
	return v
}

// Compact persists the whole in-memory head (in-order and out-of-order
// data) into blocks, merges blocks where the compaction plan says so, and
// rewrites blocks that carry tombstones. Benchmarks call it to measure the
// on-disk size; the library also compacts on its own in the background.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.acquire("compact"); err != nil {
		return err
	}
	defer s.release()
	head := s.db.Head()
	if head.NumSeries() > 0 && head.MinTime() <= head.MaxTime() {
		if err := s.db.CompactHead(tsdb.NewRangeHead(head, head.MinTime(), head.MaxTime())); err != nil {
			return fmt.Errorf("embedts: compact head: %w", err)
		}
	}
	if err := s.db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("embedts: compact out-of-order head: %w", err)
	}
	if err := s.db.Compact(ctx); err != nil {
		return fmt.Errorf("embedts: compact blocks: %w", err)
	}
	if err := s.db.CleanTombstones(); err != nil {
		return fmt.Errorf("embedts: compact: %w", err)
	}
	return nil
}

// BlockBytes returns the size on disk of the compacted blocks (not the WAL
// nor the head's memory-mapped chunks).
func (s *Store) BlockBytes() (int64, error) {
	if err := s.acquire("block bytes"); err != nil {
		return 0, err
	}
	defer s.release()
	var n int64
	for _, b := range s.db.Blocks() {
		n += b.Size()
	}
	return n, nil
}

// DeleteBefore deletes every sample older than cutoff: it writes tombstones
// (in the WAL for the head, so they survive a restart) and rewrites the
// blocks that carry them, dropping blocks that become empty. Points older
// than cutoff written afterwards are rejected with ErrOutOfWindow until the
// store is reopened.
func (s *Store) DeleteBefore(ctx context.Context, cutoff int64) error {
	if err := s.acquire("delete before"); err != nil {
		return err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedts: delete before %d: %w", cutoff, err)
	}
	if cutoff == math.MinInt64 {
		return nil
	}
	s.mu.Lock()
	s.cutoff = max(s.cutoff, cutoff)
	s.mu.Unlock()
	all := labels.MustNewMatcher(labels.MatchRegexp, measurementLabel, ".+")
	if err := s.db.Delete(ctx, math.MinInt64, cutoff-1, all); err != nil {
		return fmt.Errorf("embedts: delete before %d: %w", cutoff, err)
	}
	if err := s.db.CleanTombstones(); err != nil {
		return fmt.Errorf("embedts: delete before %d: %w", cutoff, err)
	}
	return nil
}

// labelsOf maps a series to its labels, validating it. The series' tags
// must be sorted.
func labelsOf(sr telemetry.Series) (labels.Labels, error) {
	if sr.Measurement == "" {
		return labels.EmptyLabels(), fmt.Errorf("empty measurement: %w", timeseries.ErrInvalid)
	}
	if sr.Field == "" {
		return labels.EmptyLabels(), fmt.Errorf("empty field: %w", timeseries.ErrInvalid)
	}
	b := labels.NewScratchBuilder(len(sr.Tags) + 2)
	b.Add(measurementLabel, sr.Measurement)
	b.Add(fieldLabel, sr.Field)
	for i, t := range sr.Tags {
		switch {
		case t.Key == "":
			return labels.EmptyLabels(), fmt.Errorf("tag %d: empty key: %w", i, timeseries.ErrInvalid)
		case t.Value == "":
			return labels.EmptyLabels(), fmt.Errorf("tag %q: empty value: %w", t.Key, timeseries.ErrInvalid)
		case i > 0 && sr.Tags[i-1].Key == t.Key:
			return labels.EmptyLabels(), fmt.Errorf("tag %q: duplicate key: %w", t.Key, timeseries.ErrInvalid)
		}
		b.Add(encodeTagKey(t.Key), t.Value)
	}
	b.Sort()
	return b.Labels(), nil
}

func encodeTagKey(k string) string {
	if strings.HasPrefix(k, "_") {
		return tagEscapePrefix + k
	}
	return k
}

// seriesOf maps stored labels back to a series.
func seriesOf(ls labels.Labels) telemetry.Series {
	var sr telemetry.Series
	sr.Tags = make(telemetry.Tags, 0, max(ls.Len()-2, 0))
	ls.Range(func(l labels.Label) {
		switch {
		case l.Name == measurementLabel:
			sr.Measurement = l.Value
		case l.Name == fieldLabel:
			sr.Field = l.Value
		case strings.HasPrefix(l.Name, tagEscapePrefix):
			sr.Tags = append(sr.Tags, telemetry.Tag{Key: l.Name[len(tagEscapePrefix):], Value: l.Value})
		case strings.HasPrefix(l.Name, "_"):
			// A label this package did not write; ignore it.
		default:
			sr.Tags = append(sr.Tags, telemetry.Tag{Key: l.Name, Value: l.Value})
		}
	})
	sr.Tags.Sort()
	return sr
}

func tagsSorted(ts telemetry.Tags) bool {
	for i := 1; i < len(ts); i++ {
		if ts[i-1].Key > ts[i].Key {
			return false
		}
	}
	return true
}

// cacheKey appends the cache key of sr to buf: its strings separated by
// bytes that cannot be confused with string contents' lengths because each
// string is preceded by its length.
func cacheKey(buf []byte, sr *telemetry.Series) []byte {
	add := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	add(sr.Measurement)
	add(sr.Field)
	for _, t := range sr.Tags {
		add(t.Key)
		add(t.Value)
	}
	return buf
}

// entry returns the cache entry of sr, creating it. Caller holds s.mu.
func (s *Store) entry(sr telemetry.Series) (*seriesEntry, error) {
	if !tagsSorted(sr.Tags) {
		sr.Tags = slices.Clone(sr.Tags).Sort()
	}
	s.keyBuf = cacheKey(s.keyBuf[:0], &sr)
	if e, ok := s.cache[string(s.keyBuf)]; ok {
		return e, nil
	}
	ls, err := labelsOf(sr)
	if err != nil {
		return nil, err
	}
	e := &seriesEntry{
		series: telemetry.Series{Measurement: sr.Measurement, Tags: slices.Clone(sr.Tags), Field: sr.Field},
		lset:   ls,
	}
	s.cache[string(s.keyBuf)] = e
	return e, nil
}

// WritePoints writes a batch; see timeseries.Repository.
func (s *Store) WritePoints(ctx context.Context, points []telemetry.Point) error {
	if err := s.acquire("write points"); err != nil {
		return err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedts: write %d points: %w", len(points), err)
	}
	if len(points) == 0 {
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	gen := s.gen
	now := s.now().UnixMilli()
	lo, hi := max(now-s.window, s.cutoff), now+s.skew

	ents := slices.Grow(s.ents[:0], len(points))[:len(points)]
	accepted := slices.Grow(s.accepted[:0], len(points))[:len(points)]
	defer func() {
		clear(ents) // do not pin entries through the buffer
		s.ents, s.accepted = ents[:0], accepted[:0]
	}()
	clear(accepted)

	var failed []timeseries.PointError
	fail := func(i int, err error) {
		failed = append(failed, timeseries.PointError{Index: i, Point: points[i], Err: err})
	}
	var slow []*seriesEntry

	// Pass 1: resolve series, check windows, find what must be looked up.
	for i := range points {
		p := &points[i]
		ents[i] = nil
		if p.Time < lo || p.Time > hi {
			fail(i, fmt.Errorf("timestamp %d outside [%d, %d]: %w", p.Time, lo, hi, timeseries.ErrOutOfWindow))
			continue
		}
		e, err := s.entry(p.Series)
		if err != nil {
			fail(i, err)
			continue
		}
		ents[i] = e
		if e.gen != gen {
			e.gen, e.batchMax, e.check, e.existing, e.pending = gen, math.MinInt64, false, nil, nil
		}
		if e.known && p.Time > e.maxT {
			continue
		}
		if !e.check {
			e.check, e.qmin, e.qmax = true, p.Time, p.Time
			slow = append(slow, e)
		} else {
			e.qmin, e.qmax = min(e.qmin, p.Time), max(e.qmax, p.Time)
		}
	}
	defer func() {
		for _, e := range slow {
			e.existing, e.pending = nil, nil
		}
	}()
	if len(slow) > 0 {
		if err := s.lookup(ctx, slow); err != nil {
			return fmt.Errorf("embedts: write %d points: %w", len(points), err)
		}
	}

	// Pass 2: decide and append.
	app := s.db.Appender(ctx)
	written := 0
	for i := range points {
		e := ents[i]
		if e == nil {
			continue
		}
		t, v := points[i].Time, normalise(points[i].Value)
		if old, ok := e.existing[t]; ok {
			if math.Float64bits(old) != math.Float64bits(v) {
				fail(i, fmt.Errorf("stored %v, got %v: %w", old, v, timeseries.ErrConflict))
			} else {
				written++ // identical rewrite: a no-op
			}
			continue
		}
		if t <= e.batchMax {
			if e.pending == nil {
				e.pending = make(map[int64]float64)
				for j := range i {
					if ents[j] == e && accepted[j] {
						e.pending[points[j].Time] = normalise(points[j].Value)
					}
				}
				if !e.check {
					slow = append(slow, e) // so the deferred reset frees pending
					e.check = true
				}
			}
			if old, ok := e.pending[t]; ok {
				if math.Float64bits(old) != math.Float64bits(v) {
					fail(i, fmt.Errorf("earlier in batch %v, got %v: %w", old, v, timeseries.ErrConflict))
				} else {
					written++
				}
				continue
			}
		}
		ref, err := app.Append(e.ref, e.lset, t, v)
		if err != nil {
			if kind := appendErrKind(err); kind != nil {
				fail(i, fmt.Errorf("%w: %v", kind, err))
				continue
			}
			_ = app.Rollback()
			return fmt.Errorf("embedts: write %d points: append point %d: %w", len(points), i, err)
		}
		e.ref = ref
		accepted[i] = true
		written++
		e.batchMax = max(e.batchMax, t)
		if e.pending != nil {
			e.pending[t] = v
		}
	}
	if err := ctx.Err(); err != nil {
		_ = app.Rollback()
		return fmt.Errorf("embedts: write %d points: %w", len(points), err)
	}
	if err := app.Commit(); err != nil {
		// Part of the batch may be stored: forget what we know.
		for _, e := range ents {
			if e != nil {
				e.known = false
			}
		}
		return fmt.Errorf("embedts: write %d points: commit: %w: %v", len(points), timeseries.ErrUnavailable, err)
	}
	for i, e := range ents {
		if e != nil && accepted[i] {
			if !e.known || e.batchMax > e.maxT {
				e.known, e.maxT = true, max(e.maxT, e.batchMax)
			}
		}
	}
	if s.sync {
		if err := s.syncWAL(); err != nil {
			return fmt.Errorf("embedts: write %d points: %w: %v", len(points), timeseries.ErrUnavailable, err)
		}
	}
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b timeseries.PointError) int { return cmp.Compare(a.Index, b.Index) })
		return &timeseries.PartialWriteError{Written: written, Failed: failed}
	}
	return nil
}

// appendErrKind classifies a per-sample error of the library; nil means
// the error is not about the sample.
func appendErrKind(err error) error {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrOutOfBounds),
		errors.Is(err, storage.ErrTooOldSample):
		return timeseries.ErrOutOfWindow
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return timeseries.ErrConflict
	}
	return nil
}

// lookup reads the stored samples the batch may collide with. For a series
// whose newest stored timestamp is unknown (first write since Open) it reads
// everything from the batch's oldest point on, which also tells the newest
// stored timestamp. Caller holds s.mu.
func (s *Store) lookup(ctx context.Context, slow []*seriesEntry) error {
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, e := range slow {
		if !e.known {
			e.qmax = math.MaxInt64
		}
		mint, maxt = min(mint, e.qmin), max(maxt, e.qmax)
	}
	q, err := s.db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("look up stored samples: %w: %v", timeseries.ErrUnavailable, err)
	}
	defer q.Close()
	var it chunkenc.Iterator
	ms := make([]*labels.Matcher, 0, 8)
	for _, e := range slow {
		if err := ctx.Err(); err != nil {
			return err
		}
		ms = ms[:0]
		e.lset.Range(func(l labels.Label) {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		})
		hints := &storage.SelectHints{Start: e.qmin, End: e.qmax}
		ss := q.Select(ctx, false, hints, ms...)
		newest := e.qmin - 1
		for ss.Next() {
			sr := ss.At()
			if labels.Compare(sr.Labels(), e.lset) != 0 {
				continue // a series with more labels than e
			}
			it = sr.Iterator(it)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				if vt != chunkenc.ValFloat {
					continue
				}
				t, v := it.At()
				if t < e.qmin || t > e.qmax {
					continue
				}
				if e.existing == nil {
					e.existing = make(map[int64]float64)
				}
				e.existing[t] = v
				newest = max(newest, t)
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("look up %s: %w: %v", e.series.Key(), timeseries.ErrUnavailable, err)
			}
		}
		if err := ss.Err(); err != nil {
			return fmt.Errorf("look up %s: %w: %v", e.series.Key(), timeseries.ErrUnavailable, err)
		}
		if !e.known {
			e.known, e.maxT = true, newest
		}
	}
	return nil
}

// syncWAL fsyncs the newest segment of the WAL and of the out-of-order
// WBL (where out-of-order samples are logged). fsync flushes the file,
// whatever descriptor it is called on; a segment the library closed in the
// meantime was fsynced by the library.
func (s *Store) syncWAL() error {
	for _, sub := range []string{"wal", "wbl"} {
		if err := syncNewestSegment(filepath.Join(s.dir, sub)); err != nil {
			return err
		}
	}
	return nil
}

func syncNewestSegment(dir string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	last := ""
	for _, de := range des {
		if n := de.Name(); !de.IsDir() && len(n) == 8 && strings.Trim(n, "0123456789") == "" && n > last {
			last = n
		}
	}
	if last == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, last))
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s/%s: %w", dir, last, err)
	}
	return nil
}
