// Package httpapi serves Vigil's HTTP API: the InfluxDB-compatible write
// endpoints (1.x /write, 2.x /api/v2/write, /ping, /health), Vigil's JSON
// write endpoint, the query API under /api/v1, the management API under
// /api/v1 (anomaly events, maintenance windows, detector configuration,
// devices, tokens), health and readiness probes, and the OpenAPI document of
// all of it.
//
// Every route is declared once, in the table returned by Routes, with the
// role it needs; every route except the probes requires a token (package
// auth). Error kinds map to HTTP statuses in one function, statusOf. A known
// path asked with a method it does not serve is answered 405 with an Allow
// header; an unknown path 404; both as JSON errors.
//
// # Management resources
//
// Lists are paginated: limit (1..1000, default 100) and cursor (the
// next_cursor of the previous page; "" on the last page) with order asc or
// desc. Single resources carry their version in the body and as the ETag
// ("<version>"); changes accept If-Match: "<version>" and fail with 412 when
// the resource changed since. Without If-Match, a change re-reads and
// re-applies itself when a concurrent change wins the race (optimistic
// concurrency in package appdb), so no concurrent change is lost.
//
// Anomaly states: open -> acknowledged -> resolved. acknowledge and resolve
// are idempotent (a no-op in the target state); open -> resolved is allowed;
// acknowledged or resolved -> open is an explicit reopen (PATCH
// {"state":"open"}); resolved -> acknowledged is refused with 409, since a
// resolved anomaly is final unless reopened.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Verifier authenticates a token secret; *auth.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, secret string) (auth.Principal, error)
}

// Ingester writes telemetry; *ingest.Ingester implements it.
type Ingester interface {
	WriteLineProtocol(ctx context.Context, req ingest.Request, body []byte) (ingest.Result, error)
	WriteJSON(ctx context.Context, req ingest.Request, body []byte) (ingest.Result, error)
	Limits() ingest.Limits
}

// Querier reads the time-series store; timeseries.Repository implements it.
type Querier interface {
	QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error)
	Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error)
	ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error)
}

// AppStore is the application store the management routes serve from;
// appdb.Store implements it.
type AppStore interface {
	Anomalies() appdb.AnomalyRepository
	Maintenance() appdb.MaintenanceRepository
	Detectors() appdb.DetectorConfigRepository
	Devices() appdb.DeviceRepository
	Tokens() appdb.TokenRepository
}

// Check is the state of one dependency, as /readyz reports it.
type Check struct {
	Name string // e.g. "tsdb", "appdb"
	Err  error  // nil: ready
}

// Deps are what the API serves from.
type Deps struct {
	Series   Querier  // required
	Ingester Ingester // required
	Verifier Verifier // required
	// DB is the application store of the management routes (anomalies,
	// maintenance, detectors, devices/{id}, tokens). Nil: those routes
	// answer 501. If Verifier also has Forget(tokenID string) (as
	// *auth.Verifier does), a token revoked through the API is forgotten by
	// its cache at once.
	DB AppStore
	// Ready reports the readiness of each store for /readyz and /health;
	// nil means always ready.
	Ready func(ctx context.Context) []Check
	// Logger receives server-side failures (5xx). Nil discards.
	Logger *slog.Logger
	// Now is the clock for default query ranges. Nil means time.Now.
	Now func() time.Time
	// Version is reported by /ping (X-Influxdb-Version) and /health.
	Version string
	// LastLookback is how far back /api/v1/last and /api/v1/devices look
	// when no start is given. Zero means 24h.
	LastLookback time.Duration
}

// Server is the HTTP API. It is an http.Handler, safe for concurrent use.
type Server struct {
	d    Deps
	mux  *http.ServeMux
	log  *slog.Logger
	now  func() time.Time
	bufs sync.Pool // of *bytes.Buffer, for request bodies
}

// New returns the API server over deps.
func New(deps Deps) *Server {
	s := &Server{d: deps, mux: http.NewServeMux(), log: deps.Logger, now: deps.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.d.Version == "" {
		s.d.Version = "dev"
	}
	if s.d.LastLookback <= 0 {
		s.d.LastLookback = 24 * time.Hour
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	methods := map[string]bool{}
	for _, rt := range s.routes() {
		methods[rt.Method] = true
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := s.allowed(r, methods); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, styleV2, s.log, fmt.Errorf("%s %s: allowed: %s: %w", r.Method, r.URL.Path, strings.Join(allow, ", "), errMethod))
			return
		}
		writeError(w, r, styleV2, s.log, errNotFound(r))
	})
	return s
}

// allowed returns the methods the route table serves r's path with, sorted;
// none when the path is unknown.
func (s *Server) allowed(r *http.Request, methods map[string]bool) []string {
	var out []string
	for m := range methods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Route describes one registered route.
type Route struct {
	Method string
	Path   string    // a net/http ServeMux path pattern
	Role   auth.Role // auth.RoleNone: public
}

// Routes returns every registered route.
func (s *Server) Routes() []Route {
	var out []Route
	for _, rt := range s.routes() {
		out = append(out, Route{Method: rt.Method, Path: rt.Path, Role: rt.Role})
	}
	return out
}

// errStyle is the error body format of a route family.
type errStyle int

const (
	styleV2 errStyle = iota // {"code":"invalid","message":"..."}: InfluxDB 2.x and Vigil's API
	styleV1                 // {"error":"..."}: InfluxDB 1.x
)

type route struct {
	Method string
	Path   string
	Role   auth.Role
	style  errStyle
	h      http.HandlerFunc
}

// routes is THE route table.
func (s *Server) routes() []route {
	return []route{
		{"GET", "/ping", auth.RoleNone, styleV1, s.ping},
		{"HEAD", "/ping", auth.RoleNone, styleV1, s.ping},
		{"GET", "/health", auth.RoleNone, styleV2, s.health},
		{"GET", "/healthz", auth.RoleNone, styleV2, s.healthz},
		{"GET", "/readyz", auth.RoleNone, styleV2, s.readyz},

		{"POST", "/write", auth.RoleWrite, styleV1, s.writeV1},
		{"POST", "/api/v2/write", auth.RoleWrite, styleV2, s.writeV2},
		{"POST", "/api/v1/points", auth.RoleWrite, styleV2, s.writePointsJSON},

		{"GET", "/api/v1/series", auth.RoleRead, styleV2, s.listSeries},
		{"GET", "/api/v1/query", auth.RoleRead, styleV2, s.query},
		{"GET", "/api/v1/last", auth.RoleRead, styleV2, s.last},
		{"GET", "/api/v1/devices", auth.RoleRead, styleV2, s.devices},
		{"GET", "/api/v1/devices/{id}", auth.RoleRead, styleV2, s.getDevice},

		{"GET", "/api/v1/anomalies", auth.RoleRead, styleV2, s.listAnomalies},
		{"GET", "/api/v1/anomalies/{id}", auth.RoleRead, styleV2, s.getAnomaly},
		{"PATCH", "/api/v1/anomalies/{id}", auth.RoleWrite, styleV2, s.patchAnomaly},
		{"POST", "/api/v1/anomalies/{id}/acknowledge", auth.RoleWrite, styleV2, s.acknowledgeAnomaly},
		{"POST", "/api/v1/anomalies/{id}/resolve", auth.RoleWrite, styleV2, s.resolveAnomaly},
		{"POST", "/api/v1/anomalies/{id}/comments", auth.RoleWrite, styleV2, s.commentAnomaly},

		{"GET", "/api/v1/maintenance", auth.RoleRead, styleV2, s.listMaintenance},
		{"POST", "/api/v1/maintenance", auth.RoleWrite, styleV2, s.createMaintenance},
		{"GET", "/api/v1/maintenance/{id}", auth.RoleRead, styleV2, s.getMaintenance},
		{"DELETE", "/api/v1/maintenance/{id}", auth.RoleWrite, styleV2, s.deleteMaintenance},

		{"GET", "/api/v1/detectors", auth.RoleRead, styleV2, s.listDetectors},
		{"POST", "/api/v1/detectors", auth.RoleAdmin, styleV2, s.createDetector},
		{"GET", "/api/v1/detectors/{id}", auth.RoleRead, styleV2, s.getDetector},
		{"PUT", "/api/v1/detectors/{id}", auth.RoleAdmin, styleV2, s.putDetector},
		{"DELETE", "/api/v1/detectors/{id}", auth.RoleAdmin, styleV2, s.deleteDetector},

		{"GET", "/api/v1/tokens", auth.RoleAdmin, styleV2, s.listTokens},
		{"POST", "/api/v1/tokens", auth.RoleAdmin, styleV2, s.createToken},
		{"DELETE", "/api/v1/tokens/{id}", auth.RoleAdmin, styleV2, s.revokeToken},

		{"GET", "/api/v1/openapi.json", auth.RoleRead, styleV2, s.openAPI},
	}
}

// wrap applies authentication and authorisation to a route.
func (s *Server) wrap(rt route) http.Handler {
	if rt.Role == auth.RoleNone {
		return rt.h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := auth.CredentialFromRequest(r)
		if !ok {
			writeError(w, r, rt.style, s.log, errNoCredential)
			return
		}
		p, err := s.d.Verifier.Verify(r.Context(), secret)
		if err == nil {
			err = p.Require(rt.Role)
		}
		if err != nil {
			writeError(w, r, rt.style, s.log, err)
			return
		}
		rt.h(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}
