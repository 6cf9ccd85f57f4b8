package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/httpapi"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// now is the fixed clock of every test server and store.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// env is a test server over a real embedded store and a real SQLite
// application store.
type env struct {
	srv    *httptest.Server
	api    *httpapi.Server
	store  *embedts.Store
	db     *sqlitedb.Store
	verify *auth.Verifier
	tokens map[string]string // name -> secret: admin, write, read, none, revoked, site1 (write, prefix "site1-")
}

// chainTokens looks a hash up in each store in turn: the fixed test tokens
// (memory; "none" has a role the application store cannot hold), then the
// tokens created through the API (application store).
type chainTokens []auth.TokenStore

func (c chainTokens) TokenByHash(ctx context.Context, hash []byte) (auth.Token, error) {
	for _, s := range c {
		t, err := s.TokenByHash(ctx, hash)
		if !errors.Is(err, auth.ErrUnknownToken) {
			return t, err
		}
	}
	return auth.Token{}, fmt.Errorf("token by hash: %w", auth.ErrUnknownToken)
}

type envOptions struct {
	limits ingest.Limits
	ready  func(context.Context) []httpapi.Check
	// wrap decorates the store as the ingester's writer.
	wrap func(ingest.Writer) ingest.Writer
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	store, err := embedts.Open(t.TempDir(), embedts.Options{Now: clock})
	if err != nil {
		t.Fatalf("open embedts: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	db, err := sqlitedb.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), sqlitedb.Options{Now: clock})
	if err != nil {
		t.Fatalf("open sqlitedb: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close sqlitedb: %v", err)
		}
	})
	e := &env{store: store, db: db, tokens: map[string]string{}}
	ms := auth.NewMemoryStore()
	add := func(name string, role auth.Role, mod func(*auth.Token)) {
		secret, hash, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tok := auth.Token{ID: name, Name: name, Role: role, Hash: hash}
		if mod != nil {
			mod(&tok)
		}
		ms.Put(tok)
		e.tokens[name] = secret
	}
	add("admin", auth.RoleAdmin, nil)
	add("write", auth.RoleWrite, nil)
	add("read", auth.RoleRead, nil)
	add("none", auth.RoleNone, nil)
	add("revoked", auth.RoleAdmin, func(t *auth.Token) { t.RevokedAt = now.Add(-time.Hour) })
	add("site1", auth.RoleWrite, func(t *auth.Token) { t.DevicePrefix = "site1-" })

	var w ingest.Writer = store
	if o.wrap != nil {
		w = o.wrap(store)
	}
	in := ingest.New(w, ingest.Options{Limits: o.limits, Now: clock})
	// The cache's TTL never passes on the fixed clock: a revocation
	// through the API works only because the server tells the cache to
	// forget the token.
	e.verify = auth.NewVerifier(auth.NewCache(chainTokens{ms, auth.AppDBTokens{Repo: db.Tokens()}}, auth.CacheOptions{Now: clock, Touch: db.Tokens().Touch}), clock)
	e.api = httpapi.New(httpapi.Deps{
		Series:   store,
		Ingester: in,
		Verifier: e.verify,
		DB:       db,
		Ready:    o.ready,
		Now:      clock,
		Version:  "1.8.10-vigil",
	})
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request with token name tok ("" for none) and returns the
// status, the headers and the body.
func (e *env) do(t *testing.T, method, target, tok string, hdr http.Header, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if tok != "" {
		secret, ok := e.tokens[tok]
		if !ok {
			secret = tok
		}
		req.Header.Set("Authorization", "Token "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// write posts line protocol to /api/v2/write with precision ms.
func (e *env) write(t *testing.T, lp string) {
	t.Helper()
	st, _, body := e.do(t, "POST", "/api/v2/write?bucket=b&org=o&precision=ms", "write", nil, strings.NewReader(lp))
	if st != http.StatusNoContent {
		t.Fatalf("write %q: got %d %s, want 204", lp, st, body)
	}
}

// sample is one decoded sample of /api/v1/query.
type sample struct {
	Time  string `json:"time"`
	Value any    `json:"value"`
}

type seriesResult struct {
	Key         string            `json:"key"`
	Measurement string            `json:"measurement"`
	Tags        map[string]string `json:"tags"`
	Field       string            `json:"field"`
	Samples     []sample          `json:"samples"`
	Buckets     []map[string]any  `json:"buckets"`
	Time        string            `json:"time"`
	Value       any               `json:"value"`
}

// query GETs an /api/v1 query route with the read token and decodes it.
func (e *env) query(t *testing.T, route string, params url.Values) []seriesResult {
	t.Helper()
	target := route + "?" + params.Encode()
	st, _, body := e.do(t, "GET", target, "read", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", target, st, body)
	}
	var out struct {
		Series []seriesResult `json:"series"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET %s: decode %q: %v", target, body, err)
	}
	return out.Series
}

func ms(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func verifierOf(t *testing.T, e *env) *auth.Verifier {
	t.Helper()
	return e.verify
}

// serve sends a request straight to h with the token secret and returns
// status and body.
func serve(t *testing.T, h http.Handler, method, target, secret string) (int, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	req.Header.Set("Authorization", "Token "+secret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}
