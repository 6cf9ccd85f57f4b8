package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ReadBody reads a request body of the given Content-Encoding ("", "identity"
// or "gzip") into buf (reset first) and returns its decoded bytes. A body
// larger than limit bytes after decoding gives an error wrapping
// ErrBodyTooLarge that names the limit; limit < 0 means no limit. A malformed
// gzip stream gives an error wrapping ErrUnsupportedEncoding.
func ReadBody(r io.Reader, encoding string, limit int64, buf *bytes.Buffer) ([]byte, error) {
	buf.Reset()
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read gzip body: %v: %w", err, ErrUnsupportedEncoding)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("read body: content encoding %q (accepted: identity, gzip): %w", encoding, ErrUnsupportedEncoding)
	}
	if limit >= 0 {
		r = io.LimitReader(r, limit+1)
	}
	n, err := buf.ReadFrom(r)
	if err != nil {
		if tooLarge(err) {
			return nil, fmt.Errorf("read body: exceeds limit MaxBodyBytes=%d: %w", limit, ErrBodyTooLarge)
		}
		if encoding != "" && encoding != "identity" {
			return nil, fmt.Errorf("read %s body after %d bytes: %v: %w", encoding, n, err, ErrUnsupportedEncoding)
		}
		return nil, fmt.Errorf("read body after %d bytes: %w", n, err)
	}
	if limit >= 0 && n > limit {
		return nil, fmt.Errorf("read body: exceeds limit MaxBodyBytes=%d: %w", limit, ErrBodyTooLarge)
	}
	return buf.Bytes(), nil
}

// tooLarge reports whether err comes from an http.MaxBytesReader that the
// caller may have wrapped around the raw body.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
