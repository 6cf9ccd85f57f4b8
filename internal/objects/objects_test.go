package objects_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/objects/objectstest"
)

// testPageSize keeps listings in the suite spanning several pages.
const testPageSize = 16

// fileHarness is a fileblob bucket in a temporary directory, opened the way
// objects.Open opens file URLs.
type fileHarness struct{ dir string }

func newFileHarness(t testing.TB) objectstest.Harness {
	return &fileHarness{dir: t.TempDir()}
}

func (h *fileHarness) OpenStore(ctx context.Context) (*objects.Store, error) {
	u := &url.URL{Scheme: "file", Path: filepath.ToSlash(h.dir)}
	opener := &fileblob.URLOpener{Options: fileblob.Options{CreateDir: true, NoTempDir: true}}
	b, err := opener.OpenBucketURL(ctx, u)
	if err != nil {
		return nil, err
	}
	return objects.NewWithOptions(b, objects.Options{ListPageSize: testPageSize, SpoolDir: h.dir}), nil
}

func (h *fileHarness) Persistent() bool { return true }

// Corrupt flips one byte in the middle of the object's file.
func (h *fileHarness) Corrupt(_ context.Context, key string) error {
	f, err := os.OpenFile(filepath.Join(h.dir, filepath.FromSlash(key)), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: cannot corrupt an empty object", errors.ErrUnsupported)
	}
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	return err
}

// memHarness is a memblob bucket; it does not outlive its store.
type memHarness struct{ bucket *blob.Bucket }

func newMemHarness(testing.TB) objectstest.Harness { return &memHarness{} }

func (h *memHarness) OpenStore(context.Context) (*objects.Store, error) {
	h.bucket = memblob.OpenBucket(nil)
	return objects.NewWithOptions(h.bucket, objects.Options{ListPageSize: testPageSize}), nil
}

func (h *memHarness) Persistent() bool { return false }

// Corrupt rewrites the object through the raw bucket with one byte changed
// and the same metadata, as a faulty backend could.
func (h *memHarness) Corrupt(ctx context.Context, key string) error {
	data, err := h.bucket.ReadAll(ctx, key)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: cannot corrupt an empty object", errors.ErrUnsupported)
	}
	a, err := h.bucket.Attributes(ctx, key)
	if err != nil {
		return err
	}
	data[len(data)/2] ^= 0x40
	return h.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: a.ContentType, Metadata: a.Metadata})
}

func TestConformanceFileblob(t *testing.T) {
	objectstest.RunConformanceTests(t, newFileHarness)
}

func TestConformanceMemblob(t *testing.T) {
	objectstest.RunConformanceTests(t, newMemHarness)
}

func BenchmarkFileblob(b *testing.B) { objectstest.RunBenchmarks(b, newFileHarness) }

func BenchmarkMemblob(b *testing.B) { objectstest.RunBenchmarks(b, newMemHarness) }

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		url     string
		wantErr error
	}{
		{"file", "file://" + filepath.ToSlash(filepath.Join(dir, "new", "objects")), nil},
		{"mem", "mem://", nil},
		{"s3 not yet", "s3://bucket", objects.ErrInvalid},
		{"unknown scheme", "ftp://host/x", objects.ErrInvalid},
		{"metadata=skip refused", "file://" + filepath.ToSlash(dir) + "?metadata=skip", objects.ErrInvalid},
		{"file without path", "file://", objects.ErrInvalid},
		{"unparsable", "file://%zz", objects.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := objects.Open(t.Context(), tc.url)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open(%q) error = %v, want %v", tc.url, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.url, err)
			}
			defer s.Close()
			if _, err := s.PutBytes(t.Context(), "a/b", []byte("x"), objects.PutOptions{}); err != nil {
				t.Fatalf("PutBytes after Open(%q): %v", tc.url, err)
			}
			if got, _, err := s.Get(t.Context(), "a/b"); err != nil || string(got) != "x" {
				t.Fatalf("Get after Open(%q) = %q, %v; want \"x\", nil", tc.url, got, err)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping after Open(%q): %v", tc.url, err)
			}
		})
	}
}

// TestFileLayout checks what a fileblob store leaves on disk: the object,
// its metadata sidecar, and no temporary file, even after a cancelled Put.
func TestFileLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := objects.Open(t.Context(), "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PutBytes(t.Context(), "m/v1", []byte("model"), objects.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "m/v2", strings.NewReader("half"), objects.PutOptions{SHA256: strings.Repeat("0", 64)}); err == nil {
		t.Fatal("Put with cancelled context succeeded")
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"m/v1", "m/v1.attrs"}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Errorf("files on disk = %v, want %v", files, want)
	}
}

// TestListHidesTempFiles: a temporary file left by a crashed write is not
// listed.
func TestListHidesTempFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := objects.Open(t.Context(), "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PutBytes(t.Context(), "m/v1", []byte("model"), objects.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// What fileblob's writer leaves if the process dies mid-write.
	if err := os.WriteFile(filepath.Join(dir, "m", "v2.18a2b3c4d5e6f708.tmp"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := s.List(t.Context(), "m/")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Key != "m/v1" {
		t.Errorf("List = %v, want only m/v1", entries)
	}
	if _, err := s.Stat(t.Context(), "m/v2"); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Stat(m/v2) error = %v, want ErrNotFound", err)
	}
}

func FuzzValidateKey(f *testing.F) {
	for _, seed := range []string{"a", "a/b", "../x", "/a", "a//b", "a/", "x.tmp", "é/ü", "a\x00b", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := objects.ValidateKey(key)
		if err != nil {
			if !errors.Is(err, objects.ErrInvalid) {
				t.Fatalf("ValidateKey(%q) error %v does not wrap ErrInvalid", key, err)
			}
			return
		}
		// Accepted keys never escape a directory tree.
		clean := filepath.Clean(key)
		if filepath.IsAbs(key) || clean == ".." || strings.HasPrefix(clean, "../") || clean != filepath.FromSlash(key) {
			t.Fatalf("ValidateKey accepted %q, which cleans to %q", key, filepath.Clean(key))
		}
	})
}
