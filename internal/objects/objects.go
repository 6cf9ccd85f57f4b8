// Package objects is Vigil's object store: model artifacts and backups kept
// as named blobs, over gocloud.dev/blob. A Store wraps one *blob.Bucket, a
// local directory (fileblob) in the embedded shape and, later, an
// S3-compatible bucket in the distributed one.
//
// Every object written through a Store carries the SHA-256 of its content in
// its metadata (key "vigil-sha256"); reads verify it and report ErrCorrupt on
// a mismatch, so bit rot or a torn write is detected, never returned as data.
//
// Keys are slash-separated paths such as "models/cpu-temp/v3.bin"; see
// ValidateKey for the rules. The conformance suite every backend runs is in
// package objectstest.
//
// On disk (file:// URLs, the fileblob layout): the object under key K is
// the file <dir>/K holding exactly its bytes, beside <dir>/K.attrs, a JSON
// sidecar with its content type, user metadata (including vigil-sha256)
// and MD5. A write goes to <dir>/K.<hex>.tmp, is fsynced, then renamed over
// <dir>/K; such temporary files left by a crash are never listed. The files
// can be copied or synced to S3 as they are.
package objects

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// Error kinds. Store methods wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no object has the key.
	ErrNotFound = errors.New("object not found")
	// ErrInvalid: a key, prefix, metadata entry, URL or expected hash is
	// malformed; the message names it and the rule it breaks.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt: the bytes read do not match the SHA-256 (or size) recorded
	// when the object was written.
	ErrCorrupt = errors.New("object content does not match its recorded hash")
	// ErrExists: a Put with PutOptions.IfAbsent found the key taken.
	ErrExists = errors.New("object already exists")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("object store closed")
)

// Limits and reserved names.
const (
	// MaxKeyLen is the longest key, in bytes (the S3 limit).
	MaxKeyLen = 1024
	// MaxMetadataSize bounds the sum of the lengths of user metadata keys and
	// values, in bytes (S3 allows 2 KiB including the store's own entry).
	MaxMetadataSize = 1800
	// MetadataSHA256 is the metadata key under which the hex SHA-256 of the
	// content is stored. It is reserved: PutOptions.Metadata may not use it.
	MetadataSHA256 = "vigil-sha256"
	// DefaultContentType is stored when PutOptions.ContentType is empty.
	DefaultContentType = "application/octet-stream"
	// DefaultListPageSize is the page size List asks the backend for.
	DefaultListPageSize = 1000
)

// reservedSuffixes are key endings the fileblob backend uses for its own
// files (".attrs" sidecars, ".<hex>.tmp" files being written). They are
// refused on every backend so that keys stay portable between backends.
var reservedSuffixes = []string{".attrs", ".tmp"}

var metadataKeyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// spoolMemLimit is how much of a Put body of unknown hash is kept in memory
// before spilling to a temporary file.
const spoolMemLimit = 4 << 20

// lockStripes is the number of per-key locks a Store uses to order its own
// readers and writers of one key (see Store).
const lockStripes = 64

// Info describes a stored object.
type Info struct {
	Key         string
	Size        int64
	SHA256      string // hex; empty for an object written without a Store
	ContentType string
	ModTime     time.Time
	Metadata    map[string]string // user metadata, without MetadataSHA256; nil if none
}

// Entry is one object in a List result: what a listing reports without
// reading each object's metadata (call Stat for the rest).
type Entry struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// PutOptions are the optional parts of a Put.
type PutOptions struct {
	// ContentType of the object; DefaultContentType when empty.
	ContentType string
	// Metadata is stored with the object. Keys must match
	// [a-z0-9][a-z0-9._-]* and may not be MetadataSHA256; values must be
	// printable ASCII; the total size is at most MaxMetadataSize bytes.
	Metadata map[string]string
	// SHA256, when set (hex), is the hash the caller expects the content to
	// have. Put then streams the body straight to the backend instead of
	// spooling it first, and aborts the write with ErrInvalid, storing
	// nothing, if the content does not match.
	SHA256 string
	// IfAbsent makes the Put fail with ErrExists, storing nothing, when the
	// key already holds an object. Use it for write-once (versioned) keys.
	IfAbsent bool
}

// Options tune a Store. The zero value is valid.
type Options struct {
	// ListPageSize is the page size List asks the backend for;
	// DefaultListPageSize when 0. List always returns every page.
	ListPageSize int
	// SpoolDir is where Put spools bodies larger than 4 MiB whose hash is not
	// given; os.TempDir when empty.
	SpoolDir string
}

// Store is the object store over one bucket.
//
// Contract:
//   - Concurrency: all methods are safe for concurrent use.
//   - Durability: an object is stored once Put returns nil. Writes go to a
//     temporary object that becomes visible only when complete (fileblob:
//     temp file, fsync, rename; S3: a PUT is atomic), so a Put that fails,
//     is cancelled, or whose process dies never leaves a partial object
//     visible under its key. A failed overwrite leaves the old object.
//   - Overwrite: Put to an existing key replaces the object (content and
//     metadata) unless PutOptions.IfAbsent is set. Readers see the old or
//     the new object, never a mix: the Store orders its own reads and
//     writes of a key, and on backends where two processes may race, a read
//     whose metadata and content straddle an overwrite is retried.
//   - Integrity: Get and Open verify the SHA-256 recorded at Put time and
//     return ErrCorrupt on a mismatch. Objects written by other tools, with
//     no recorded hash, are returned unverified (Info.SHA256 is empty).
//   - Delete is idempotent: deleting a missing key returns nil.
//   - Ownership: byte slices passed in are not retained; those returned
//     belong to the caller.
//   - Errors wrap ErrNotFound, ErrInvalid, ErrCorrupt, ErrExists or
//     ErrClosed, or the context's error, or a backend error.
//
// Known backend limits: on fileblob a key cannot be both an object and a
// "directory" of others ("a" and "a/b"), and the ".attrs" sidecar holding
// metadata is written in place just before the content is renamed, so a
// crash at that instant during an overwrite leaves the old content with the
// new hash: reads then report ErrCorrupt (detected, not silent).
type Store struct {
	bucket *blob.Bucket
	opts   Options
	locks  [lockStripes]sync.RWMutex
	closed atomic.Bool
}

// New returns a Store over bucket with default Options. The Store owns the
// bucket: Close closes it.
func New(bucket *blob.Bucket) *Store {
	return NewWithOptions(bucket, Options{})
}

// NewWithOptions returns a Store over bucket tuned by opts. The Store owns
// the bucket: Close closes it.
func NewWithOptions(bucket *blob.Bucket, opts Options) *Store {
	if opts.ListPageSize <= 0 {
		opts.ListPageSize = DefaultListPageSize
	}
	return &Store{bucket: bucket, opts: opts}
}

// Open opens the store named by rawURL:
//
//	file:///abs/dir   a local directory (created if missing); temporary
//	                  files are made next to their object, so renames
//	                  never cross file systems
//	mem://            in memory, lost on Close (tests)
//
// Other schemes (s3://) are not supported yet and return ErrInvalid.
// Backends are chosen by an explicit switch; the process-wide
// blob.DefaultURLMux is not used.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open object store %q: %w: %w", rawURL, ErrInvalid, err)
	}
	var bucket *blob.Bucket
	switch u.Scheme {
	case fileblob.Scheme:
		if u.Query().Has("metadata") {
			return nil, fmt.Errorf("open object store %q: %w: query parameter \"metadata\" is not allowed (the store keeps content hashes in metadata)", rawURL, ErrInvalid)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("open object store %q: %w: file URL needs a directory path", rawURL, ErrInvalid)
		}
		opener := &fileblob.URLOpener{Options: fileblob.Options{CreateDir: true, NoTempDir: true}}
		bucket, err = opener.OpenBucketURL(ctx, u)
	case memblob.Scheme:
		bucket, err = (&memblob.URLOpener{}).OpenBucketURL(ctx, u)
	default:
		return nil, fmt.Errorf("open object store %q: %w: unsupported scheme %q (want file or mem)", rawURL, ErrInvalid, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open object store %q: %w", rawURL, err)
	}
	return New(bucket), nil
}

// Close closes the store and its bucket. It is idempotent; other methods
// return ErrClosed afterwards.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close object store: %w", err)
	}
	return nil
}

// ValidateKey reports, wrapping ErrInvalid, why key cannot name an object:
// it must be 1 to MaxKeyLen bytes of valid UTF-8 without control characters
// or backslashes, made of non-empty "/"-separated segments none of which is
// "." or "..", so it neither starts nor ends with "/"; and it may not end in
// ".attrs" or ".tmp" (reserved by the file backend).
func ValidateKey(key string) error {
	if err := validatePath(key); err != nil {
		return err
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: key %q ends with \"/\"", ErrInvalid, key)
	}
	for _, suf := range reservedSuffixes {
		if strings.HasSuffix(key, suf) {
			return fmt.Errorf("%w: key %q ends with reserved suffix %q", ErrInvalid, key, suf)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: empty, or a key-like path that may
// end with "/".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validatePath(strings.TrimSuffix(prefix, "/"))
}

func validatePath(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key %.40q... is %d bytes, longer than the limit of %d", ErrInvalid, key, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalid, key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: key %q starts with \"/\"", ErrInvalid, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: key %q contains character %q", ErrInvalid, key, r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty path segment", ErrInvalid, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a %q path segment", ErrInvalid, key, seg)
		}
	}
	return nil
}

func validateMetadata(key string, md map[string]string) error {
	total := 0
	for k, v := range md {
		if !metadataKeyRE.MatchString(k) {
			return fmt.Errorf("%w: put %q: metadata key %q must match %s", ErrInvalid, key, k, metadataKeyRE)
		}
		if k == MetadataSHA256 {
			return fmt.Errorf("%w: put %q: metadata key %q is reserved", ErrInvalid, key, k)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return fmt.Errorf("%w: put %q: metadata %q value has byte 0x%02x at %d (want printable ASCII)", ErrInvalid, key, k, v[i], i)
			}
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataSize {
		return fmt.Errorf("%w: put %q: metadata is %d bytes, more than the limit of %d", ErrInvalid, key, total, MaxMetadataSize)
	}
	return nil
}

func validateSHA256(key, sum string) error {
	if len(sum) != sha256.Size*2 {
		return fmt.Errorf("%w: put %q: expected SHA256 %q is not %d hex digits", ErrInvalid, key, sum, sha256.Size*2)
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return fmt.Errorf("%w: put %q: expected SHA256 %q is not hex", ErrInvalid, key, sum)
	}
	return nil
}

// lock returns the lock stripe guarding key.
func (s *Store) lock(key string) *sync.RWMutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return &s.locks[h.Sum32()%lockStripes]
}

// kind maps a backend error to the store's error kinds, keeping the original
// in the chain.
func kind(err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case gcerrors.InvalidArgument:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// PutBytes stores data under key; see Put.
func (s *Store) PutBytes(ctx context.Context, key string, data []byte, opts PutOptions) (Info, error) {
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if opts.SHA256 != "" && !strings.EqualFold(opts.SHA256, hexSum) {
		if err := validateSHA256(key, opts.SHA256); err != nil {
			return Info{}, err
		}
		return Info{}, fmt.Errorf("put %q: %w: content SHA-256 %s, expected %s", key, ErrInvalid, hexSum, opts.SHA256)
	}
	opts.SHA256 = hexSum
	return s.put(ctx, key, bytes.NewReader(data), opts, true)
}

// Put stores the content read from r under key, replacing any object there
// (unless opts.IfAbsent), and returns its Info (read back from the backend;
// ModTime is zero in the rare case another process replaced the object
// before it could be read back). Nothing is visible under key
// until Put succeeds. When opts.SHA256 is empty, r is first read to the end
// (spooled in memory up to 4 MiB, then in a temporary file) to compute the
// hash that is stored with the object; otherwise r is streamed.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error) {
	return s.put(ctx, key, r, opts, false)
}

// put is Put; hashed means opts.SHA256 was computed from r's content, so
// it need not be checked again.
func (s *Store) put(ctx context.Context, key string, r io.Reader, opts PutOptions, hashed bool) (Info, error) {
	if err := s.checkOpen(); err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("put: %w", err)
	}
	if err := validateMetadata(key, opts.Metadata); err != nil {
		return Info{}, err
	}
	if opts.IfAbsent {
		// Fail fast; the write itself still checks atomically.
		if _, err := s.Stat(ctx, key); err == nil {
			return Info{}, fmt.Errorf("put %q: %w", key, ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return Info{}, fmt.Errorf("put %q: %w", key, err)
		}
	}
	verify := opts.SHA256 != "" && !hashed
	switch {
	case hashed:
	case verify:
		if err := validateSHA256(key, opts.SHA256); err != nil {
			return Info{}, err
		}
		opts.SHA256 = strings.ToLower(opts.SHA256)
	default:
		body, sum, cleanup, err := spool(r, s.opts.SpoolDir)
		if err != nil {
			return Info{}, fmt.Errorf("put %q: read content: %w", key, err)
		}
		defer cleanup()
		r, opts.SHA256 = body, sum
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, err)
	}
	return s.write(ctx, key, r, opts, verify)
}

func (s *Store) write(ctx context.Context, key string, r io.Reader, opts PutOptions, verify bool) (Info, error) {
	md := make(map[string]string, len(opts.Metadata)+1)
	maps.Copy(md, opts.Metadata)
	md[MetadataSHA256] = opts.SHA256
	ct := opts.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var file *os.File // the temp file, on backends that write one
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType: ct,
		Metadata:    md,
		IfNotExist:  opts.IfAbsent,
		BeforeWrite: func(as func(any) bool) error {
			as(&file)
			return nil
		},
	})
	if err != nil {
		return Info{}, fmt.Errorf("put %q: %w", key, kind(err))
	}
	// abort cancels the write so the backend discards it.
	abort := func(cause error) (Info, error) {
		cancel()
		_ = w.Close()
		return Info{}, cause
	}
	var h hash.Hash
	src := r
	if verify {
		h = sha256.New()
		src = io.TeeReader(r, h)
	}
	// writerOnly hides blob.Writer's ReadFrom, which allocates 1 MiB per
	// call; a *bytes.Reader body is still written in one Write (WriteTo).
	n, err := io.CopyBuffer(writerOnly{w}, src, make([]byte, 32<<10))
	if err != nil {
		return abort(fmt.Errorf("put %q: write content: %w", key, err))
	}
	if verify {
		if got := hex.EncodeToString(h.Sum(nil)); got != opts.SHA256 {
			return abort(fmt.Errorf("put %q: %w: content SHA-256 %s, expected %s", key, ErrInvalid, got, opts.SHA256))
		}
	}
	if err := ctx.Err(); err != nil {
		return abort(fmt.Errorf("put %q: %w", key, err))
	}
	if file != nil {
		if err := file.Sync(); err != nil {
			return abort(fmt.Errorf("put %q: sync: %w", key, err))
		}
	}
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if err := w.Close(); err != nil {
		if opts.IfAbsent && gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return Info{}, fmt.Errorf("put %q: %w", key, ErrExists)
		}
		return Info{}, fmt.Errorf("put %q: %w", key, kind(err))
	}
	if file != nil {
		// Make the rename durable. With fileblob's no_tmp_dir the temp file
		// lives beside its object, so this is the object's directory.
		if err := syncDir(filepath.Dir(file.Name())); err != nil {
			return Info{}, fmt.Errorf("put %q: sync directory: %w", key, err)
		}
	}
	info, err := s.stat(ctx, key)
	if err == nil && info.SHA256 == opts.SHA256 {
		if info.Size != n {
			return Info{}, fmt.Errorf("put %q: %w: stored %d bytes, wrote %d", key, ErrCorrupt, info.Size, n)
		}
		return info, nil
	}
	// Another process replaced or deleted the object since this write
	// landed (or reading it back failed): report what was written.
	return Info{Key: key, Size: n, SHA256: opts.SHA256, ContentType: ct, Metadata: maps.Clone(opts.Metadata)}, nil
}

// writerOnly exposes only the Write method of a writer.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// spool reads r to the end, returning a reader over the same bytes, their
// hex SHA-256 and a cleanup function.
func spool(r io.Reader, dir string) (io.Reader, string, func(), error) {
	h := sha256.New()
	var buf bytes.Buffer
	_, err := io.CopyN(io.MultiWriter(&buf, h), r, spoolMemLimit+1)
	if errors.Is(err, io.EOF) {
		return bytes.NewReader(buf.Bytes()), hex.EncodeToString(h.Sum(nil)), func() {}, nil
	}
	if err != nil {
		return nil, "", nil, err
	}
	f, err := os.CreateTemp(dir, "vigil-objects-spool-*")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return f, hex.EncodeToString(h.Sum(nil)), cleanup, nil
}

// Stat returns the Info of the object under key.
func (s *Store) Stat(ctx context.Context, key string) (Info, error) {
	if err := s.checkOpen(); err != nil {
		return Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat: %w", err)
	}
	mu := s.lock(key)
	mu.RLock()
	defer mu.RUnlock()
	info, err := s.stat(ctx, key)
	if err != nil {
		return Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	return info, nil
}

func (s *Store) stat(ctx context.Context, key string) (Info, error) {
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return Info{}, kind(err)
	}
	info := Info{
		Key:         key,
		Size:        a.Size,
		SHA256:      a.Metadata[MetadataSHA256],
		ContentType: a.ContentType,
		ModTime:     a.ModTime,
	}
	for k, v := range a.Metadata {
		if k == MetadataSHA256 {
			continue
		}
		if info.Metadata == nil {
			info.Metadata = make(map[string]string, len(a.Metadata))
		}
		info.Metadata[k] = v
	}
	return info, nil
}

// maxOpenAttempts bounds the retries of a read whose metadata and content
// came from different versions of an object (a concurrent overwrite).
const maxOpenAttempts = 3

// open returns the Info and a reader of the same version of key.
func (s *Store) open(ctx context.Context, key string) (Info, *blob.Reader, error) {
	mu := s.lock(key)
	for attempt := 1; ; attempt++ {
		mu.RLock()
		info, err := s.stat(ctx, key)
		if err != nil {
			mu.RUnlock()
			return Info{}, nil, err
		}
		r, err := s.bucket.NewReader(ctx, key, nil)
		mu.RUnlock()
		if err != nil {
			return Info{}, nil, kind(err)
		}
		if r.Size() == info.Size && r.ModTime().Equal(info.ModTime) {
			return info, r, nil
		}
		_ = r.Close()
		if attempt == maxOpenAttempts {
			return Info{}, nil, fmt.Errorf("object changed during each of %d attempts to read it", maxOpenAttempts)
		}
	}
}

// Get returns the content of the object under key and its Info, after
// checking the content against the recorded SHA-256 (ErrCorrupt if it
// differs).
func (s *Store) Get(ctx context.Context, key string) ([]byte, Info, error) {
	if err := s.checkOpen(); err != nil {
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, fmt.Errorf("get: %w", err)
	}
	rc, info, err := s.openVerified(ctx, key)
	if err != nil {
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	defer rc.Close()
	// Room for the content plus the read that finds EOF, so the buffer
	// never grows.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size+bytes.MinRead))
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, Info{}, fmt.Errorf("get %q: %w", key, err)
	}
	return buf.Bytes(), info, nil
}

// Open returns a reader of the object under key and its Info. The reader
// checks the content against the recorded SHA-256 and size as it reaches
// the end: instead of io.EOF, its last Read returns an error wrapping
// ErrCorrupt on a mismatch, so a caller must read to io.EOF before trusting
// the content. The caller must Close the reader.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := s.checkOpen(); err != nil {
		return nil, Info{}, fmt.Errorf("open %q: %w", key, err)
	}
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, fmt.Errorf("open: %w", err)
	}
	rc, info, err := s.openVerified(ctx, key)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open %q: %w", key, err)
	}
	return rc, info, nil
}

func (s *Store) openVerified(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	info, r, err := s.open(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	if info.SHA256 == "" {
		return r, info, nil
	}
	return &verifyingReader{r: r, key: key, want: info.SHA256, size: info.Size, h: sha256.New()}, info, nil
}

// verifyingReader hashes what it reads and checks hash and size at EOF.
type verifyingReader struct {
	r    *blob.Reader
	key  string
	want string
	size int64
	n    int64
	h    hash.Hash
	err  error // sticky result once EOF was reached
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want || v.n != v.size {
			v.err = fmt.Errorf("read %q: %w: read %d bytes with SHA-256 %s, recorded %d bytes with %s", v.key, ErrCorrupt, v.n, got, v.size, v.want)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// tempSuffixRE matches the names fileblob gives files being written.
var tempSuffixRE = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)

// List returns every object whose key starts with prefix ("" for all),
// sorted by key, reading all pages. Keys the store could not address
// (invalid under ValidateKey, such as fileblob's in-progress temporary
// files) are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("list: prefix: %w", err)
	}
	if !s.bucket.As(new(os.FileInfo)) {
		return s.list(ctx, prefix, s.opts.ListPageSize, true)
	}
	// fileblob walks the whole tree for every page, and its page tokens
	// lose keys that sort before a "directory" walked ahead of them ("a.x"
	// sorts before "a/1", but "a/" is walked first). So list it in one
	// page, growing the page size (and walking again) until it fits; the
	// slice fileblob preallocates stays within 16 times the result.
	for pageSize := s.opts.ListPageSize; ; pageSize *= 16 {
		out, err := s.list(ctx, prefix, pageSize, false)
		if !errors.Is(err, errMorePages) {
			return out, err
		}
	}
}

// errMorePages reports that a listing did not fit in one page.
var errMorePages = errors.New("more than one page")

// list returns every object under prefix, reading all pages if allPages,
// else failing with errMorePages when there is more than one.
func (s *Store) list(ctx context.Context, prefix string, pageSize int, allPages bool) ([]Entry, error) {
	var out []Entry
	token := blob.FirstPageToken
	for {
		page, next, err := s.bucket.ListPage(ctx, token, pageSize, &blob.ListOptions{Prefix: prefix})
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, kind(err))
		}
		for _, o := range page {
			if o.IsDir || tempSuffixRE.MatchString(o.Key) || ValidateKey(o.Key) != nil {
				continue
			}
			out = append(out, Entry{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
		}
		if len(next) == 0 {
			slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
			return out, nil
		}
		if !allPages {
			return nil, errMorePages
		}
		token = next
	}
}

// Delete removes the object under key. Deleting a missing key is not an
// error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %q: %w", key, kind(err))
	}
	return nil
}

// Ping reports whether the bucket can be reached, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("ping object store: %w", err)
	}
	ok, err := s.bucket.IsAccessible(ctx)
	if err != nil {
		return fmt.Errorf("ping object store: %w", err)
	}
	if !ok {
		return errors.New("ping object store: bucket is not accessible")
	}
	return nil
}
