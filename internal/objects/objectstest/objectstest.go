// Package objectstest is the conformance suite of the object store: every
// bucket backend an objects.Store can sit on (fileblob, memblob, later
// s3blob against a real server) runs RunConformanceTests, and
// RunBenchmarks for comparable figures.
package objectstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-iot/vigil/internal/objects"
)

// Harness gives the suite stores over one backend's storage. Each call of a
// HarnessMaker must return a harness over fresh, empty storage (its own
// directory, bucket or key prefix), so tests can run in parallel.
type Harness interface {
	// OpenStore opens a Store over the harness's storage. It may be called
	// again after the previous Store was closed.
	OpenStore(ctx context.Context) (*objects.Store, error)
	// Persistent reports whether objects survive closing a Store and
	// opening another with OpenStore.
	Persistent() bool
	// Corrupt changes some bytes of the object under key behind the
	// store's back, keeping its size and metadata, as bit rot would. It
	// returns an error wrapping errors.ErrUnsupported if it cannot.
	Corrupt(ctx context.Context, key string) error
}

// HarnessMaker returns a new harness; it registers its cleanup with
// t.Cleanup. Stores it opens should use a small objects.Options.ListPageSize
// (at most 16) so the suite's listings span several pages.
type HarnessMaker func(t testing.TB) Harness

// manyKeys is the number of keys the listing test writes.
const manyKeys = 50

// RunConformanceTests runs the object store conformance suite.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, s *objects.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutStreams", testPutStreams},
		{"Overwrite", testOverwrite},
		{"IfAbsent", testIfAbsent},
		{"List", testList},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidPut", testInvalidPut},
		{"Corruption", testCorruption},
		{"CancelledPut", testCancelledPut},
		{"FailedOverwriteKeepsOld", testFailedOverwriteKeepsOld},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentOverwriteAndRead", testConcurrentOverwriteAndRead},
		{"Reopen", testReopen},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s := openStore(t, h)
			tc.fn(t, h, s)
		})
	}
}

func openStore(t testing.TB, h Harness) *objects.Store {
	t.Helper()
	s, err := h.OpenStore(context.Background())
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustPut(t *testing.T, s *objects.Store, key string, data []byte, opts objects.PutOptions) objects.Info {
	t.Helper()
	info, err := s.PutBytes(t.Context(), key, data, opts)
	if err != nil {
		t.Fatalf("PutBytes(%q, %d bytes): %v", key, len(data), err)
	}
	return info
}

// checkGet verifies Get, Open and Stat of key all return want.
func checkGet(t *testing.T, s *objects.Store, key string, want []byte) objects.Info {
	t.Helper()
	got, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes (sha %s), want %d bytes (sha %s)", key, len(got), sum(got), len(want), sum(want))
	}
	if info.Size != int64(len(want)) || info.SHA256 != sum(want) || info.Key != key {
		t.Errorf("Get(%q) info = {Key %q Size %d SHA256 %s}, want {%q %d %s}", key, info.Key, info.Size, info.SHA256, key, len(want), sum(want))
	}
	rc, oinfo, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	streamed, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil {
		t.Errorf("Open(%q) Close: %v", key, cerr)
	}
	if err != nil {
		t.Fatalf("Open(%q) read: %v", key, err)
	}
	if !bytes.Equal(streamed, want) {
		t.Fatalf("Open(%q) streamed %d bytes, want %d", key, len(streamed), len(want))
	}
	st, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if diff := cmp.Diff(info, st, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("Stat(%q) differs from Get info (-get +stat):\n%s", key, diff)
	}
	if diff := cmp.Diff(info, oinfo, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("Open(%q) info differs from Get info (-get +open):\n%s", key, diff)
	}
	return info
}

func testRoundTrip(t *testing.T, _ Harness, s *objects.Store) {
	tests := []struct {
		name string
		key  string
		data []byte
		opts objects.PutOptions
	}{
		{"empty", "rt/empty", []byte{}, objects.PutOptions{}},
		{"small", "rt/small.txt", []byte("hello, vigil"), objects.PutOptions{ContentType: "text/plain"}},
		{"metadata", "rt/models/cpu/v1.bin", payload(1, 4096), objects.PutOptions{Metadata: map[string]string{"detector": "mad", "version": "1"}}},
		{"3MiB", "rt/big", payload(2, 3<<20), objects.PutOptions{}},
		{"unicode key", "rt/überwachung/ключ", []byte("x"), objects.PutOptions{}},
		{"spaces and symbols", "rt/a b+c=d@e", []byte("y"), objects.PutOptions{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			put := mustPut(t, s, tc.key, tc.data, tc.opts)
			info := checkGet(t, s, tc.key, tc.data)
			if diff := cmp.Diff(put, info, cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("Put info differs from Get info (-put +get):\n%s", diff)
			}
			wantCT := tc.opts.ContentType
			if wantCT == "" {
				wantCT = objects.DefaultContentType
			}
			if !strings.HasPrefix(info.ContentType, wantCT) {
				t.Errorf("ContentType = %q, want %q", info.ContentType, wantCT)
			}
			if diff := cmp.Diff(tc.opts.Metadata, info.Metadata, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Metadata (-want +got):\n%s", diff)
			}
			if info.ModTime.IsZero() {
				t.Errorf("ModTime is zero")
			}
		})
	}
}

func testPutStreams(t *testing.T, _ Harness, s *objects.Store) {
	// 5 MiB exceeds the in-memory spool (4 MiB), so the unknown-hash path
	// spills to a temporary file.
	big := payload(3, 5<<20)
	tests := []struct {
		name string
		data []byte
		opts objects.PutOptions
	}{
		{"unknown hash small", []byte("streamed"), objects.PutOptions{}},
		{"unknown hash 5MiB", big, objects.PutOptions{}},
		{"known hash 5MiB", big, objects.PutOptions{SHA256: sum(big)}},
		{"known hash upper case", []byte("abc"), objects.PutOptions{SHA256: strings.ToUpper(sum([]byte("abc")))}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("stream/%d", i)
			// A reader with no Len or WriteTo, so nothing can shortcut.
			r := io.MultiReader(bytes.NewReader(tc.data))
			info, err := s.Put(t.Context(), key, r, tc.opts)
			if err != nil {
				t.Fatalf("Put(%q): %v", key, err)
			}
			if info.SHA256 != sum(tc.data) || info.Size != int64(len(tc.data)) {
				t.Errorf("Put(%q) info = size %d sha %s, want %d %s", key, info.Size, info.SHA256, len(tc.data), sum(tc.data))
			}
			checkGet(t, s, key, tc.data)
		})
	}
}

func testOverwrite(t *testing.T, _ Harness, s *objects.Store) {
	const key = "ow/model"
	mustPut(t, s, key, []byte("version one, longer"), objects.PutOptions{Metadata: map[string]string{"v": "1"}, ContentType: "text/plain"})
	mustPut(t, s, key, []byte("v2"), objects.PutOptions{})
	info := checkGet(t, s, key, []byte("v2"))
	if len(info.Metadata) != 0 {
		t.Errorf("after overwrite Metadata = %v, want none (metadata is replaced, not merged)", info.Metadata)
	}
	if info.ContentType != objects.DefaultContentType {
		t.Errorf("after overwrite ContentType = %q, want %q", info.ContentType, objects.DefaultContentType)
	}
	entries, err := s.List(t.Context(), "ow/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(entries) != 1 {
		t.Errorf("List after overwrite = %v, want one entry", entries)
	}
}

func testIfAbsent(t *testing.T, _ Harness, s *objects.Store) {
	const key = "once/v1"
	mustPut(t, s, key, []byte("first"), objects.PutOptions{IfAbsent: true})
	_, err := s.PutBytes(t.Context(), key, []byte("second"), objects.PutOptions{IfAbsent: true})
	if !errors.Is(err, objects.ErrExists) {
		t.Fatalf("second PutBytes(%q, IfAbsent) error = %v, want ErrExists", key, err)
	}
	checkGet(t, s, key, []byte("first"))

	// Concurrent IfAbsent puts: exactly one wins.
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = s.PutBytes(t.Context(), "once/race", []byte{byte(i)}, objects.PutOptions{IfAbsent: true})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, objects.ErrExists):
			t.Errorf("racer %d: error = %v, want nil or ErrExists", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent IfAbsent puts succeeded, want exactly 1", won, racers)
	}
}

func testList(t *testing.T, _ Harness, s *objects.Store) {
	var want []string
	for i := range manyKeys {
		key := fmt.Sprintf("list/%03d", i)
		want = append(want, key)
		mustPut(t, s, key, []byte(key), objects.PutOptions{})
	}
	others := []string{"lisz", "listing", "other/x", "list.x"}
	for _, k := range others {
		mustPut(t, s, k, []byte("o"), objects.PutOptions{})
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"list/", want},
		{"list/00", want[:10]},
		{"list/049", want[49:]},
		{"nothing/", nil},
		{"", slices.Sorted(slices.Values(append(slices.Clone(want), others...)))},
		{"list", slices.Sorted(slices.Values(append(slices.Clone(want), "list.x", "listing")))},
	}
	for _, tc := range tests {
		t.Run("prefix="+tc.prefix, func(t *testing.T) {
			entries, err := s.List(t.Context(), tc.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tc.prefix, err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Key)
				if e.Key == "list/007" && e.Size != int64(len("list/007")) {
					t.Errorf("List(%q) entry %q Size = %d, want %d", tc.prefix, e.Key, e.Size, len("list/007"))
				}
				if e.ModTime.IsZero() {
					t.Errorf("List(%q) entry %q has zero ModTime", tc.prefix, e.Key)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List(%q) keys (-want +got):\n%s", tc.prefix, diff)
			}
		})
	}
	if _, err := s.List(t.Context(), "../x"); !errors.Is(err, objects.ErrInvalid) {
		t.Errorf("List(%q) error = %v, want ErrInvalid", "../x", err)
	}
}

func testDelete(t *testing.T, _ Harness, s *objects.Store) {
	const key = "del/a"
	mustPut(t, s, key, []byte("gone soon"), objects.PutOptions{})
	mustPut(t, s, "del/b", []byte("stays"), objects.PutOptions{})
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	if _, _, err := s.Get(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Get(%q) after Delete error = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Stat(%q) after Delete error = %v, want ErrNotFound", key, err)
	}
	if err := s.Delete(t.Context(), key); err != nil {
		t.Errorf("second Delete(%q) = %v, want nil (idempotent)", key, err)
	}
	entries, err := s.List(t.Context(), "del/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(entries) != 1 || entries[0].Key != "del/b" {
		t.Errorf("List after Delete = %v, want only del/b", entries)
	}
	checkGet(t, s, "del/b", []byte("stays"))
}

func testNotFound(t *testing.T, _ Harness, s *objects.Store) {
	const key = "missing/x"
	if _, _, err := s.Get(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
	}
	if _, _, err := s.Open(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Open(%q) error = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
	}
}

func testInvalidKeys(t *testing.T, _ Harness, s *objects.Store) {
	keys := []string{
		"", "/abs", "a/../b", "..", "./a", "a/./b", "a//b", "dir/", "a\\b", "tab\there",
		"x.attrs", "model.tmp", "bad\xffutf8", strings.Repeat("k", objects.MaxKeyLen+1),
	}
	for _, key := range keys {
		t.Run(fmt.Sprintf("%.20q", key), func(t *testing.T) {
			ctx := t.Context()
			_, err := s.PutBytes(ctx, key, []byte("x"), objects.PutOptions{})
			if !errors.Is(err, objects.ErrInvalid) {
				t.Fatalf("PutBytes(%q) error = %v, want ErrInvalid", key, err)
			}
			if key != "" && len(key) < 100 && !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
				t.Errorf("PutBytes(%q) error %q does not name the key", key, err)
			}
			if _, _, err := s.Get(ctx, key); !errors.Is(err, objects.ErrInvalid) {
				t.Errorf("Get(%q) error = %v, want ErrInvalid", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, objects.ErrInvalid) {
				t.Errorf("Stat(%q) error = %v, want ErrInvalid", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, objects.ErrInvalid) {
				t.Errorf("Delete(%q) error = %v, want ErrInvalid", key, err)
			}
		})
	}
	// The longest valid key works.
	long := strings.Repeat("k", objects.MaxKeyLen-4) + "/end"
	long = long[len(long)-objects.MaxKeyLen:]
	if err := objects.ValidateKey(long); err != nil {
		t.Fatalf("ValidateKey(%d-byte key): %v", len(long), err)
	}
}

func testInvalidPut(t *testing.T, _ Harness, s *objects.Store) {
	tests := []struct {
		name string
		opts objects.PutOptions
	}{
		{"reserved metadata key", objects.PutOptions{Metadata: map[string]string{objects.MetadataSHA256: "x"}}},
		{"upper-case metadata key", objects.PutOptions{Metadata: map[string]string{"Version": "1"}}},
		{"non-ASCII metadata value", objects.PutOptions{Metadata: map[string]string{"v": "é"}}},
		{"oversized metadata", objects.PutOptions{Metadata: map[string]string{"v": strings.Repeat("x", objects.MaxMetadataSize)}}},
		{"malformed hash", objects.PutOptions{SHA256: "abc"}},
		{"wrong hash", objects.PutOptions{SHA256: sum([]byte("other content"))}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("inv/%d", i)
			_, err := s.Put(t.Context(), key, strings.NewReader("content"), tc.opts)
			if !errors.Is(err, objects.ErrInvalid) {
				t.Fatalf("Put(%q, %+v) error = %v, want ErrInvalid", key, tc.opts, err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("Stat(%q) after refused Put error = %v, want ErrNotFound", key, err)
			}
		})
	}
}

func testCorruption(t *testing.T, h Harness, s *objects.Store) {
	const key = "rot/model.bin"
	data := payload(4, 256<<10)
	mustPut(t, s, key, data, objects.PutOptions{})
	if err := h.Corrupt(t.Context(), key); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("harness cannot corrupt objects: %v", err)
	} else if err != nil {
		t.Fatalf("Corrupt(%q): %v", key, err)
	}
	if _, _, err := s.Get(t.Context(), key); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("Get(%q) of corrupted object error = %v, want ErrCorrupt", key, err)
	}
	rc, _, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("reading corrupted %q through Open: error = %v, want ErrCorrupt", key, err)
	}
}

// cancellingReader yields n bytes, then cancels its context and yields more.
type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
		for i := range p {
			p[i] = 'z'
		}
		return len(p), nil
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.n -= k
	return k, nil
}

// cancelledSum is the SHA-256 of what a cancellingReader{n: n} limited to
// total bytes yields.
func cancelledSum(n, total int) string {
	return sum(append(bytes.Repeat([]byte{'a'}, n), bytes.Repeat([]byte{'z'}, total-n)...))
}

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

var errReader = errors.New("reader broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errReader
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func testCancelledPut(t *testing.T, _ Harness, s *objects.Store) {
	tests := []struct {
		name string
		put  func(ctx context.Context, cancel context.CancelFunc, key string) error
	}{
		{"cancel while streaming", func(ctx context.Context, cancel context.CancelFunc, key string) error {
			// The right hash makes Put stream into the backend writer, so
			// only the cancellation can stop it.
			r := io.LimitReader(&cancellingReader{n: 1 << 20, cancel: cancel}, 4<<20)
			_, err := s.Put(ctx, key, r, objects.PutOptions{SHA256: cancelledSum(1<<20, 4<<20)})
			if !errors.Is(err, context.Canceled) {
				return fmt.Errorf("error %v is not context.Canceled", err)
			}
			return err
		}},
		{"cancel while spooling", func(ctx context.Context, cancel context.CancelFunc, key string) error {
			r := io.LimitReader(&cancellingReader{n: 1 << 20, cancel: cancel}, 2<<20)
			_, err := s.Put(ctx, key, r, objects.PutOptions{})
			if !errors.Is(err, context.Canceled) {
				return fmt.Errorf("error %v is not context.Canceled", err)
			}
			return err
		}},
		{"cancelled before put", func(ctx context.Context, cancel context.CancelFunc, key string) error {
			cancel()
			_, err := s.PutBytes(ctx, key, []byte("never"), objects.PutOptions{})
			return err
		}},
		{"reader fails while streaming", func(ctx context.Context, _ context.CancelFunc, key string) error {
			_, err := s.Put(ctx, key, &failingReader{n: 1 << 20}, objects.PutOptions{SHA256: sum(nil)})
			if !errors.Is(err, errReader) {
				return fmt.Errorf("error %v does not wrap the reader's", err)
			}
			return err
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("cancel/%d", i)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if err := tc.put(ctx, cancel, key); err == nil {
				t.Fatalf("put of %q succeeded, want an error", key)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("Stat(%q) after failed put error = %v, want ErrNotFound", key, err)
			}
		})
	}
	entries, err := s.List(t.Context(), "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("List after failed puts = %v, want nothing", entries)
	}
}

func testFailedOverwriteKeepsOld(t *testing.T, _ Harness, s *objects.Store) {
	const key = "keep/model"
	old := payload(5, 1<<20)
	mustPut(t, s, key, old, objects.PutOptions{Metadata: map[string]string{"v": "1"}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := io.LimitReader(&cancellingReader{n: 512 << 10, cancel: cancel}, 2<<20)
	if _, err := s.Put(ctx, key, r, objects.PutOptions{SHA256: cancelledSum(512<<10, 2<<20)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled overwrite of %q error = %v, want context.Canceled", key, err)
	}
	if _, err := s.Put(t.Context(), key, &failingReader{n: 100}, objects.PutOptions{SHA256: sum(nil)}); err == nil {
		t.Fatalf("failing overwrite of %q succeeded", key)
	}
	if _, err := s.PutBytes(t.Context(), key, []byte("new"), objects.PutOptions{SHA256: sum([]byte("wrong"))}); err == nil {
		t.Fatalf("overwrite of %q with a wrong hash succeeded", key)
	}
	info := checkGet(t, s, key, old)
	if info.Metadata["v"] != "1" {
		t.Errorf("Metadata after failed overwrites = %v, want v=1", info.Metadata)
	}
}

func testConcurrentPuts(t *testing.T, _ Harness, s *objects.Store) {
	const writers, perWriter = 8, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("conc/w%d/%d", w, i)
				if _, err := s.PutBytes(t.Context(), key, payload(uint64(w*100+i), 10<<10), objects.PutOptions{}); err != nil {
					errs <- fmt.Errorf("PutBytes(%q): %w", key, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		for i := range perWriter {
			key := fmt.Sprintf("conc/w%d/%d", w, i)
			got, _, err := s.Get(t.Context(), key)
			if err != nil {
				t.Fatalf("Get(%q): %v", key, err)
			}
			if !bytes.Equal(got, payload(uint64(w*100+i), 10<<10)) {
				t.Errorf("Get(%q) returned another object's content", key)
			}
		}
	}
	entries, err := s.List(t.Context(), "conc/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(entries) != writers*perWriter {
		t.Errorf("List(conc/) = %d entries, want %d", len(entries), writers*perWriter)
	}
}

// testConcurrentOverwriteAndRead overwrites one key while others read it:
// every read must return one complete version, never an error or a mix.
func testConcurrentOverwriteAndRead(t *testing.T, _ Harness, s *objects.Store) {
	const key = "hot/model"
	versions := [][]byte{payload(10, 64<<10), payload(11, 32<<10), payload(12, 96<<10)}
	mustPut(t, s, key, versions[0], objects.PutOptions{})
	valid := map[string]bool{}
	for _, v := range versions {
		valid[sum(v)] = true
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	wg.Go(func() {
		defer cancel()
		for i := range 30 {
			if _, err := s.PutBytes(t.Context(), key, versions[i%len(versions)], objects.PutOptions{}); err != nil {
				report(fmt.Errorf("overwrite %d: %w", i, err))
				return
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, info, err := s.Get(t.Context(), key)
				if err != nil {
					report(fmt.Errorf("Get during overwrites: %w", err))
					return
				}
				if !valid[sum(got)] || info.SHA256 != sum(got) {
					report(fmt.Errorf("Get during overwrites returned %d bytes matching no version (info sha %s)", len(got), info.SHA256))
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
}

func testReopen(t *testing.T, h Harness, s *objects.Store) {
	if !h.Persistent() {
		t.Skip("harness storage does not outlive its store")
	}
	want := map[string][]byte{}
	for i := range 5 {
		key := fmt.Sprintf("reopen/%d", i)
		want[key] = payload(uint64(i), 1000*i)
		mustPut(t, s, key, want[key], objects.PutOptions{Metadata: map[string]string{"i": fmt.Sprint(i)}})
	}
	if err := s.Delete(t.Context(), "reopen/0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	delete(want, "reopen/0")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openStore(t, h)
	entries, err := s2.List(t.Context(), "")
	if err != nil {
		t.Fatalf("List after reopen: %v", err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Key)
	}
	if diff := cmp.Diff(slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}), got); diff != "" {
		t.Errorf("List after reopen (-want +got):\n%s", diff)
	}
	for key, data := range want {
		info := checkGet(t, s2, key, data)
		if info.Metadata["i"] != strings.TrimPrefix(key, "reopen/") {
			t.Errorf("%q Metadata after reopen = %v", key, info.Metadata)
		}
	}
}

func testClose(t *testing.T, _ Harness, s *objects.Store) {
	mustPut(t, s, "closing/x", []byte("x"), objects.PutOptions{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, _, err := s.Get(t.Context(), "closing/x"); !errors.Is(err, objects.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.PutBytes(t.Context(), "closing/y", nil, objects.PutOptions{}); !errors.Is(err, objects.ErrClosed) {
		t.Errorf("PutBytes after Close error = %v, want ErrClosed", err)
	}
}

// RunBenchmarks measures Put and Get of objects of several sizes.
func RunBenchmarks(b *testing.B, newHarness HarnessMaker) {
	for _, size := range []int{1 << 10, 1 << 20} {
		data := payload(7, size)
		name := fmt.Sprintf("size=%dKiB", size>>10)
		b.Run("op=put/"+name, func(b *testing.B) {
			s := openStore(b, newHarness(b))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.PutBytes(b.Context(), fmt.Sprintf("bench/%d", i%64), data, objects.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("op=get/"+name, func(b *testing.B) {
			s := openStore(b, newHarness(b))
			if _, err := s.PutBytes(b.Context(), "bench/get", data, objects.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Get(b.Context(), "bench/get"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
