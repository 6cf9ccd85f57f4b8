package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// ErrRejected is returned (wrapped) when the server refuses a batch with a
// client error (4xx other than 429): retrying the same batch cannot help.
var ErrRejected = errors.New("write rejected by server")

// Sender posts points to a server's InfluxDB v2 write endpoint
// (/api/v2/write?org=..&bucket=..&precision=ms) as line protocol, in
// batches. Points of one device tick share a line. A Sender is safe for
// concurrent use when its Client is.
type Sender struct {
	// URL is the server's base URL, e.g. "http://localhost:8080".
	URL string
	// Org, Bucket and Token go into the query and the Authorization header
	// ("Token <Token>"); an empty Token sends no header.
	Org, Bucket, Token string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// BatchSize is the number of points per request; 0 means 5000.
	BatchSize int
	// MaxRetries bounds the retries of a batch answered 429 or 503 (after
	// the Retry-After delay, or 1 s); 0 means 5.
	MaxRetries int
}

// Send posts all points, batch by batch, and returns how many the server
// accepted. It stops at the first batch that fails.
func (s *Sender) Send(ctx context.Context, points iter.Seq[telemetry.Point]) (int, error) {
	endpoint, err := s.endpoint()
	if err != nil {
		return 0, err
	}
	size := s.BatchSize
	if size <= 0 {
		size = 5000
	}
	batch := make([]telemetry.Point, 0, size)
	sent := 0
	var body []byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		body, err = telemetry.AppendPoints(body[:0], batch, telemetry.Millisecond)
		if err != nil {
			return fmt.Errorf("send points: %w", err)
		}
		if err := s.post(ctx, endpoint, body); err != nil {
			return fmt.Errorf("send %d points after %d: %w", len(batch), sent, err)
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	for p := range points {
		// Keep a device tick's points in one batch, so they share a line.
		if len(batch) >= size && (p.Time != batch[len(batch)-1].Time || p.Series.Device() != batch[len(batch)-1].Series.Device()) {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		batch = append(batch, p)
	}
	if err := flush(); err != nil {
		return sent, err
	}
	return sent, nil
}

func (s *Sender) endpoint() (string, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("sender url %q: %w: want http(s)://host[:port]", s.URL, ErrInvalid)
	}
	u = u.JoinPath("/api/v2/write")
	q := url.Values{}
	q.Set("org", s.Org)
	q.Set("bucket", s.Bucket)
	q.Set("precision", "ms")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (s *Sender) post(ctx context.Context, endpoint string, body []byte) error {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries := s.MaxRetries
	if retries <= 0 {
		retries = 5
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("post %s: %w", endpoint, err)
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if s.Token != "" {
			req.Header.Set("Authorization", "Token "+s.Token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("post %s: %w", endpoint, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < retries:
			wait := time.Second
			if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec >= 0 {
				wait = time.Duration(sec) * time.Second
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("post %s: %w", endpoint, ctx.Err())
			case <-t.C:
			}
		case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
			return fmt.Errorf("post %s: %w: %s: %s", endpoint, ErrRejected, resp.Status, strings.TrimSpace(string(msg)))
		default:
			return fmt.Errorf("post %s: %s: %s", endpoint, resp.Status, strings.TrimSpace(string(msg)))
		}
	}
}
