// Package loadgen measures HTTP ingest throughput: it pre-generates InfluxDB
// line protocol for a configurable number of series, posts batches of it to
// a server's /api/v2/write endpoint over several connections for a duration
// or a number of batches, and reports points, lines and bytes per second and
// the latency percentiles of the requests.
//
// Timestamps are realistic: recent (from an hour before the run on), strictly
// increasing per series, and unique per series within and across batches, so
// that no point is refused as out of window or as a conflicting rewrite.
// Each connection owns a disjoint set of series and sends its batches in
// order, so every series is written in time order.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalid is returned (wrapped) for an invalid Config.
var ErrInvalid = errors.New("invalid load configuration")

// ErrRefused is returned (wrapped) when the server refuses a request for a
// reason that retrying cannot fix (a 4xx answer other than 429), or when
// the first request of a run fails: the run stops.
var ErrRefused = errors.New("server refused the load")

// Config describes one load run.
type Config struct {
	// URL is the server's base URL, e.g. "http://localhost:8086".
	URL string
	// Token is sent as "Authorization: Token <Token>"; empty sends none.
	Token string
	// Org and Bucket go into the query string (Vigil ignores them).
	Org, Bucket string
	// Batch is the number of lines per request; 0 means 5000.
	Batch int
	// Fields is the number of float fields per line (points per line);
	// 0 means 10.
	Fields int
	// Series is the number of distinct tag sets (devices); each has Fields
	// series. 0 means 1000. At least Connections.
	Series int
	// Connections is the number of concurrent connections; 0 means 2.
	Connections int
	// Duration bounds the run when Batches is 0; 0 means 10s.
	Duration time.Duration
	// Batches, when positive, is the total number of requests to send.
	Batches int
	// Step is the time between two points of one series; 0 means 100ms.
	Step time.Duration
	// Start is the timestamp of every series' first point; zero means an
	// hour before Now.
	Start time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Client sends the requests; nil means a client with a connection pool
	// sized for Connections.
	Client *http.Client
}

func (c *Config) resolve() error {
	if c.Batch == 0 {
		c.Batch = 5000
	}
	if c.Fields == 0 {
		c.Fields = 10
	}
	if c.Series == 0 {
		c.Series = 1000
	}
	if c.Connections == 0 {
		c.Connections = 2
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Step == 0 {
		c.Step = 100 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Start.IsZero() {
		c.Start = c.Now().Add(-time.Hour)
	}
	var errs []error
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want http(s)://host[:port]", c.URL))
	}
	if c.Batch < 1 || c.Fields < 1 || c.Connections < 1 || c.Batches < 0 || c.Duration < 0 || c.Step < time.Millisecond {
		errs = append(errs, fmt.Errorf("batch %d, fields %d, connections %d, batches %d, duration %v, step %v: want positive sizes and a step of at least 1ms",
			c.Batch, c.Fields, c.Connections, c.Batches, c.Duration, c.Step))
	}
	if c.Series < c.Connections {
		errs = append(errs, fmt.Errorf("series %d below connections %d: each connection needs series of its own", c.Series, c.Connections))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loadgen: %w: %w", ErrInvalid, err)
	}
	return nil
}

// Result is what a run measured. Counts include only acknowledged requests
// (2xx answers).
type Result struct {
	// Requests answered 2xx, and Errors (any other answer or a transport
	// error).
	Requests, Errors int64
	// Lines, Points and Bytes (request bodies) acknowledged.
	Lines, Points, Bytes int64
	// Elapsed is the wall time from the first request to the last answer.
	Elapsed time.Duration
	// Latency percentiles of the acknowledged requests.
	P50, P90, P99, Max time.Duration
	// FirstError describes the first failed request; "" when none.
	FirstError string
}

// PointsPerSec returns acknowledged points per second.
func (r Result) PointsPerSec() float64 { return rate(r.Points, r.Elapsed) }

// LinesPerSec returns acknowledged lines per second.
func (r Result) LinesPerSec() float64 { return rate(r.Lines, r.Elapsed) }

// BytesPerSec returns acknowledged body bytes per second.
func (r Result) BytesPerSec() float64 { return rate(r.Bytes, r.Elapsed) }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// variants is the number of distinct value sets pre-generated per series.
const variants = 16

// generator builds the bodies of one connection from pre-generated lines
// (without timestamps) of its series.
type generator struct {
	prefixes [][]byte // per local series × variant
	nLocal   int
	batch    int
	startMs  int64
	stepMs   int64
	next     int64 // line counter
}

func newGenerator(cfg *Config, conn int) *generator {
	g := &generator{batch: cfg.Batch, startMs: cfg.Start.UnixMilli(), stepMs: cfg.Step.Milliseconds()}
	rng := rand.New(rand.NewPCG(uint64(conn), 0x5851f42d4c957f2d))
	for s := conn; s < cfg.Series; s += cfg.Connections {
		g.nLocal++
		base := make([]float64, cfg.Fields)
		for f := range base {
			base[f] = math.Round(rng.Float64()*1000) / 10
		}
		for range variants {
			var b []byte
			b = fmt.Appendf(b, "bench,device=dev-%06d,site=site-%d ", s, s%16)
			for f := range cfg.Fields {
				if f > 0 {
					b = append(b, ',')
				}
				b = append(b, 'f')
				b = strconv.AppendInt(b, int64(f), 10)
				b = append(b, '=')
				b = strconv.AppendFloat(b, base[f]+math.Round(rng.NormFloat64()*100)/100, 'f', -1, 64)
			}
			b = append(b, ' ')
			g.prefixes = append(g.prefixes, b)
		}
	}
	return g
}

// body appends the connection's next batch to dst and returns it with the
// largest timestamp in it.
func (g *generator) body(dst []byte) ([]byte, int64) {
	var last int64
	for range g.batch {
		i, seq := g.next%int64(g.nLocal), g.next/int64(g.nLocal)
		g.next++
		dst = append(dst, g.prefixes[int(i)*variants+int(seq%variants)]...)
		last = g.startMs + seq*g.stepMs
		dst = strconv.AppendInt(dst, last, 10)
		dst = append(dst, '\n')
	}
	return dst, last
}

// Run sends the load described by cfg and returns what it measured. It
// stops at the end of the duration or after cfg.Batches requests, when ctx
// is cancelled (returning what was measured so far and ctx's error), or on
// a refusal wrapping ErrRefused.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.resolve(); err != nil {
		return Result{}, err
	}
	u, _ := url.Parse(cfg.URL)
	u = u.JoinPath("/api/v2/write")
	u.RawQuery = url.Values{"org": {cfg.Org}, "bucket": {cfg.Bucket}, "precision": {"ms"}}.Encode()
	endpoint := u.String()
	client := cfg.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.Connections, MaxConnsPerHost: cfg.Connections, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	gens := make([]*generator, cfg.Connections)
	for c := range gens {
		gens[c] = newGenerator(&cfg, c)
	}

	// rctx ends on a refusal or when ctx does; the duration only stops new
	// requests, so that the last ones complete and count.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		budget   atomic.Int64
		mu       sync.Mutex
		res      Result
		lats     []time.Duration
		fatal    error
		answered atomic.Bool
		wg       sync.WaitGroup
	)
	budget.Store(int64(cfg.Batches))
	fail := func(err error, stop bool) {
		mu.Lock()
		defer mu.Unlock()
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
		if stop && fatal == nil {
			if !errors.Is(err, ErrRefused) && !errors.Is(err, ErrInvalid) {
				err = fmt.Errorf("%w: %w", ErrRefused, err)
			}
			fatal = err
			cancel()
		}
	}
	begin := time.Now()
	deadline := begin.Add(cfg.Duration)
	for _, g := range gens {
		wg.Go(func() {
			var (
				body []byte
				mine []time.Duration
				ok   Result
			)
			defer func() {
				mu.Lock()
				res.Requests += ok.Requests
				res.Lines += ok.Lines
				res.Points += ok.Points
				res.Bytes += ok.Bytes
				lats = append(lats, mine...)
				mu.Unlock()
			}()
			for rctx.Err() == nil {
				if (cfg.Batches > 0 && budget.Add(-1) < 0) || (cfg.Batches == 0 && !time.Now().Before(deadline)) {
					return
				}
				var last int64
				body, last = g.body(body[:0])
				if last > cfg.Now().UnixMilli() {
					fail(fmt.Errorf("%w: timestamps caught up with the clock; use more --series, a smaller --step or an earlier start", ErrInvalid), true)
					return
				}
				t0 := time.Now()
				err := post(rctx, client, endpoint, cfg.Token, body)
				lat := time.Since(t0)
				if err != nil {
					if rctx.Err() != nil {
						return // stopped mid-request: neither a success nor a failure
					}
					var se *statusError
					fail(err, !answered.Load() || (errors.As(err, &se) && se.code/100 == 4 && se.code != http.StatusTooManyRequests))
					continue
				}
				answered.Store(true)
				ok.Requests++
				ok.Lines += int64(cfg.Batch)
				ok.Points += int64(cfg.Batch * cfg.Fields)
				ok.Bytes += int64(len(body))
				mine = append(mine, lat)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	slices.Sort(lats)
	res.P50, res.P90, res.P99 = percentile(lats, 0.50), percentile(lats, 0.90), percentile(lats, 0.99)
	if len(lats) > 0 {
		res.Max = lats[len(lats)-1]
	}
	if fatal != nil {
		return res, fmt.Errorf("loadgen: %w", fatal)
	}
	return res, ctx.Err()
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// statusError is a request answered with a non-2xx status.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

func (e *statusError) Is(target error) bool {
	return target == ErrRefused && e.code/100 == 4 && e.code != http.StatusTooManyRequests
}

func post(ctx context.Context, client *http.Client, endpoint, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post %s: %w", endpoint, &statusError{code: resp.StatusCode, msg: strings.TrimSpace(string(msg))})
	}
	return nil
}
