package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/httpapi"
)

type maintenanceResp struct {
	ID        string         `json:"id"`
	Scope     map[string]any `json:"scope"`
	Start     string         `json:"start"`
	End       string         `json:"end"`
	Reason    string         `json:"reason"`
	CreatedBy string         `json:"created_by"`
	Version   int64          `json:"version"`
}

func TestMaintenance(t *testing.T) {
	e := newEnv(t, envOptions{})
	var created []string
	for i := range 5 {
		req := map[string]any{
			"scope":  map[string]any{"kind": "device", "target": fmt.Sprint("pump-", i%2)},
			"start":  iso(now.Add(time.Duration(i) * time.Hour)),
			"end":    iso(now.Add(time.Duration(i)*time.Hour + 30*time.Minute)),
			"reason": fmt.Sprint("service ", i),
		}
		h, body := e.call(t, "POST", "/api/v1/maintenance", "write", nil, req, http.StatusCreated)
		m := decode[maintenanceResp](t, body)
		if m.CreatedBy != "write" || m.Reason != req["reason"] || m.Start != now.Add(time.Duration(i)*time.Hour).Format(time.RFC3339) || h.Get("Location") != "/api/v1/maintenance/"+m.ID {
			t.Errorf("POST %v = %s (Location %s)", req, body, h.Get("Location"))
		}
		created = append(created, m.ID)
	}
	_, body := e.call(t, "POST", "/api/v1/maintenance", "write", nil, map[string]any{
		"scope": map[string]any{"kind": "selector", "selector": map[string]string{"site": "north"}},
		"start": "-1h", "end": "now",
	}, http.StatusCreated)
	sel := decode[maintenanceResp](t, body)
	if diff := cmp.Diff(map[string]any{"kind": "selector", "selector": map[string]any{"site": "north"}}, sel.Scope); diff != "" {
		t.Errorf("selector scope (-want +got):\n%s", diff)
	}

	list := func(t *testing.T, query string) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for {
			_, body := e.call(t, "GET", "/api/v1/maintenance?"+query+"&cursor="+url.QueryEscape(cursor), "read", nil, nil, http.StatusOK)
			p := decode[struct {
				Maintenance []maintenanceResp `json:"maintenance"`
				NextCursor  string            `json:"next_cursor"`
			}](t, body)
			for _, m := range p.Maintenance {
				ids = append(ids, m.ID)
			}
			if p.NextCursor == "" {
				return ids
			}
			cursor = p.NextCursor
		}
	}
	tests := []struct {
		name, query string
		want        []string
	}{
		{"all by start, pages of 2", "limit=2", append([]string{sel.ID}, created...)},
		{"device", "kind=device&target=pump-1", []string{created[1], created[3]}},
		{"active at", "active_at=" + url.QueryEscape(iso(now.Add(2*time.Hour+time.Minute))), []string{created[2]}},
		{"overlapping, newest first", "order=desc&from=" + url.QueryEscape(iso(now.Add(-time.Minute))) + "&to=" + url.QueryEscape(iso(now.Add(time.Hour+time.Second))), []string{created[1], created[0], sel.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, list(t, tt.query)); diff != "" {
				t.Errorf("GET /api/v1/maintenance?%s (-want +got):\n%s", tt.query, diff)
			}
		})
	}

	dev := map[string]any{"kind": "device", "target": "pump-1"}
	invalid := []struct {
		name  string
		body  any
		names string
	}{
		{"no scope", map[string]any{"start": "now", "end": "+1h"}, "scope.kind"},
		{"unknown kind", map[string]any{"scope": map[string]any{"kind": "planet"}, "start": "-1h", "end": "now"}, "scope.kind"},
		{"device without target", map[string]any{"scope": map[string]any{"kind": "device"}, "start": "-1h", "end": "now"}, "scope.target"},
		{"empty selector", map[string]any{"scope": map[string]any{"kind": "selector"}, "start": "-1h", "end": "now"}, "scope.selector"},
		{"no start", map[string]any{"scope": dev, "end": "now"}, "start"},
		{"bad end", map[string]any{"scope": dev, "start": "now", "end": "tomorrow"}, "end"},
		{"end before start", map[string]any{"scope": dev, "start": "now", "end": "-1h"}, "end"},
		{"long reason", map[string]any{"scope": dev, "start": "-1h", "end": "now", "reason": strings.Repeat("r", 5000)}, "reason"},
		{"unknown field", map[string]any{"scope": dev, "start": "-1h", "end": "now", "device": "x"}, "device"},
	}
	for _, tt := range invalid {
		t.Run("invalid "+tt.name, func(t *testing.T) {
			e.wantError(t, "POST", "/api/v1/maintenance", "write", nil, tt.body, http.StatusBadRequest, tt.names)
		})
	}

	e.call(t, "GET", "/api/v1/maintenance/"+created[0], "read", nil, nil, http.StatusOK)
	e.call(t, "DELETE", "/api/v1/maintenance/"+created[0], "write", nil, nil, http.StatusNoContent)
	e.wantError(t, "DELETE", "/api/v1/maintenance/"+created[0], "write", nil, nil, http.StatusNotFound, created[0])
	e.wantError(t, "GET", "/api/v1/maintenance/"+created[0], "read", nil, nil, http.StatusNotFound, created[0])
}

type detectorResp struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Detector string          `json:"detector"`
	Scope    map[string]any  `json:"scope"`
	Params   json.RawMessage `json:"params"`
	Enabled  bool            `json:"enabled"`
	Version  int64           `json:"version"`
}

func TestDetectors(t *testing.T) {
	e := newEnv(t, envOptions{})
	h, body := e.call(t, "POST", "/api/v1/detectors", "admin", nil, map[string]any{
		"name": "pump MAD", "detector": "ensemble", "scope": map[string]any{"kind": "device", "target": "pump-1"},
		"params": map[string]any{"window": 120, "threshold": 3.5},
	}, http.StatusCreated)
	d := decode[detectorResp](t, body)
	if d.Detector != "ensemble" || !d.Enabled || d.Version != 1 || h.Get("ETag") != `"1"` || !json.Valid(d.Params) || !strings.Contains(string(d.Params), `"threshold":3.5`) {
		t.Errorf("POST /api/v1/detectors = %s (ETag %s)", body, h.Get("ETag"))
	}
	_, body = e.call(t, "POST", "/api/v1/detectors", "admin", nil, map[string]any{
		"detector": "device", "scope": map[string]any{"kind": "series", "target": "env,device=pump-1 temp"}, "enabled": false,
	}, http.StatusCreated)
	d2 := decode[detectorResp](t, body)
	e.call(t, "POST", "/api/v1/detectors", "admin", nil, map[string]any{
		"detector": "ensemble", "scope": map[string]any{"kind": "selector", "selector": map[string]string{"site": "north"}},
	}, http.StatusCreated)

	lists := []struct {
		query string
		want  int
	}{{"", 3}, {"?detector=device", 1}, {"?enabled=false", 1}, {"?kind=series&target=" + url.QueryEscape("env,device=pump-1 temp"), 1}, {"?limit=2", 2}, {"?enabled=nah", -1}}
	for _, l := range lists {
		if l.want < 0 {
			e.wantError(t, "GET", "/api/v1/detectors"+l.query, "read", nil, nil, http.StatusBadRequest, "enabled")
			continue
		}
		_, body := e.call(t, "GET", "/api/v1/detectors"+l.query, "read", nil, nil, http.StatusOK)
		p := decode[struct {
			Detectors  []detectorResp `json:"detectors"`
			NextCursor string         `json:"next_cursor"`
		}](t, body)
		if len(p.Detectors) != l.want || (l.query == "?limit=2") != (p.NextCursor != "") {
			t.Errorf("GET /api/v1/detectors%s: got %d (next %q), want %d", l.query, len(p.Detectors), p.NextCursor, l.want)
		}
	}

	target := "/api/v1/detectors/" + d.ID
	put := map[string]any{"detector": "ensemble", "scope": map[string]any{"kind": "global"}, "params": map[string]any{"window": 60}, "enabled": false}
	e.wantError(t, "PUT", target, "admin", http.Header{"If-Match": {`"7"`}}, put, http.StatusPreconditionFailed, "version 7")
	h, body = e.call(t, "PUT", target, "admin", http.Header{"If-Match": {`"1"`}}, put, http.StatusOK)
	if got := decode[detectorResp](t, body); got.Version != 2 || got.Enabled || got.Scope["kind"] != "global" || h.Get("ETag") != `"2"` {
		t.Errorf("PUT %s = %s", target, body)
	}
	_, body = e.call(t, "PUT", target, "admin", nil, map[string]any{"detector": "ensemble", "scope": map[string]any{"kind": "global"}}, http.StatusOK)
	if got := decode[detectorResp](t, body); got.Version != 3 || !got.Enabled || got.Params != nil {
		t.Errorf("PUT %s without If-Match = %s, want version 3, enabled, no params", target, body)
	}
	invalid := []struct {
		name  string
		body  any
		names string
	}{
		{"no detector", map[string]any{"scope": map[string]any{"kind": "global"}}, "detector"},
		{"unknown detector", map[string]any{"detector": "mad", "scope": map[string]any{"kind": "global"}}, "detector"},
		{"no scope", map[string]any{"detector": "ensemble"}, "scope.kind"},
		{"global with target", map[string]any{"detector": "ensemble", "scope": map[string]any{"kind": "global", "target": "x"}}, "scope.kind"},
		{"params not an object", map[string]any{"detector": "ensemble", "scope": map[string]any{"kind": "global"}, "params": []int{1}}, "params"},
	}
	for _, tt := range invalid {
		e.wantError(t, "POST", "/api/v1/detectors", "admin", nil, tt.body, http.StatusBadRequest, tt.names)
		e.wantError(t, "PUT", target, "admin", nil, tt.body, http.StatusBadRequest, tt.names)
	}
	e.call(t, "GET", "/api/v1/detectors/"+d2.ID, "read", nil, nil, http.StatusOK)
	e.call(t, "DELETE", "/api/v1/detectors/"+d2.ID, "admin", nil, nil, http.StatusNoContent)
	e.wantError(t, "GET", "/api/v1/detectors/"+d2.ID, "read", nil, nil, http.StatusNotFound, d2.ID)
	e.wantError(t, "PUT", "/api/v1/detectors/"+d2.ID, "admin", nil, put, http.StatusNotFound, d2.ID)
	e.wantError(t, "DELETE", "/api/v1/detectors/"+d2.ID, "admin", nil, nil, http.StatusNotFound, d2.ID)
}

// TestTokenLifecycle creates a token through the API, writes with its
// secret, revokes it and sees the secret refused.
func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, body := e.call(t, "POST", "/api/v1/tokens", "admin", nil, map[string]any{"name": "telegraf", "role": "write", "device_prefix": "site2-"}, http.StatusCreated)
	created := decode[struct {
		Token struct {
			ID, Name, Role string
		} `json:"token"`
		Secret string `json:"secret"`
	}](t, body)
	if created.Token.Role != "write" || created.Token.Name != "telegraf" || !strings.HasPrefix(created.Secret, "vgl_") {
		t.Fatalf("POST /api/v1/tokens = %s", body)
	}
	secret := created.Secret

	st, _, b, err := e.send("POST", "/api/v2/write?precision=ms", secret, nil, "env,device=site2-a temp=1 "+ms(now))
	if err != nil || st != http.StatusNoContent {
		t.Fatalf("write with the new token: got %d %s %v, want 204", st, b, err)
	}
	st, _, b, _ = e.send("POST", "/api/v2/write?precision=ms", secret, nil, "env,device=site1-a temp=1 "+ms(now))
	if st != http.StatusForbidden {
		t.Errorf("write outside the device prefix: got %d %s, want 403", st, b)
	}
	e.wantError(t, "GET", "/api/v1/tokens", secret, nil, nil, http.StatusForbidden, "admin")

	_, body = e.call(t, "GET", "/api/v1/tokens", "admin", nil, nil, http.StatusOK)
	var raw struct {
		Tokens     []map[string]any `json:"tokens"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Tokens) != 1 {
		t.Fatalf("GET /api/v1/tokens = %s, want the one token created", body)
	}
	tok := raw.Tokens[0]
	for k := range tok {
		if strings.Contains(k, "secret") || strings.Contains(k, "hash") {
			t.Errorf("GET /api/v1/tokens shows field %q", k)
		}
	}
	if strings.Contains(body, secret) {
		t.Error("GET /api/v1/tokens shows the secret")
	}
	if tok["id"] != created.Token.ID || tok["device_prefix"] != "site2-" || tok["last_used_at"] != now.Format(time.RFC3339) {
		t.Errorf("listed token %v: want id %s, prefix site2-, last_used_at %s", tok, created.Token.ID, now.Format(time.RFC3339))
	}

	e.call(t, "DELETE", "/api/v1/tokens/"+created.Token.ID, "admin", nil, nil, http.StatusNoContent)
	e.call(t, "DELETE", "/api/v1/tokens/"+created.Token.ID, "admin", nil, nil, http.StatusNoContent) // idempotent
	st, _, b, _ = e.send("POST", "/api/v2/write?precision=ms", secret, nil, "env,device=site2-a temp=2 "+ms(now))
	if st != http.StatusUnauthorized {
		t.Errorf("write with the revoked token: got %d %s, want 401", st, b)
	}
	_, body = e.call(t, "GET", "/api/v1/tokens?revoked=true", "admin", nil, nil, http.StatusOK)
	if !strings.Contains(body, created.Token.ID) || !strings.Contains(body, `"revoked_at"`) {
		t.Errorf("GET /api/v1/tokens?revoked=true = %s, want the revoked token", body)
	}
	e.wantError(t, "DELETE", "/api/v1/tokens/nope", "admin", nil, nil, http.StatusNotFound, "nope")

	invalid := []struct {
		body  any
		names string
	}{
		{map[string]any{"role": "read"}, "name"},
		{map[string]any{"name": "x"}, "role"},
		{map[string]any{"name": "x", "role": "root"}, "role"},
		{map[string]any{"name": "x", "role": "read", "expires_at": "-1h"}, "expires_at"},
		{map[string]any{"name": "x", "role": "read", "secret": "mine"}, "secret"},
	}
	for _, tt := range invalid {
		e.wantError(t, "POST", "/api/v1/tokens", "admin", nil, tt.body, http.StatusBadRequest, tt.names)
	}
	e.wantError(t, "GET", "/api/v1/tokens?role=root", "admin", nil, nil, http.StatusBadRequest, "role")
}

func TestGetDevice(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := seed(t, e)
	if _, err := e.db.Devices().Create(t.Context(), appdb.Device{ID: "d2", Name: "boiler", Labels: map[string]string{"site": "north"}, FirstSeen: t0.Add(-time.Hour), LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Devices().Create(t.Context(), appdb.Device{ID: "d9", Name: "spare"}); err != nil {
		t.Fatal(err)
	}
	type device struct {
		ID         string            `json:"id"`
		Name       string            `json:"name"`
		Labels     map[string]string `json:"labels"`
		Registered bool              `json:"registered"`
		FirstSeen  string            `json:"first_seen"`
		LastSeen   string            `json:"last_seen"`
		Series     int               `json:"series"`
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	tests := []struct {
		id   string
		want device
	}{
		{"d1", device{ID: "d1", Series: 2, LastSeen: rfc(t0.Add(3 * time.Second))}},
		{"d2", device{ID: "d2", Name: "boiler", Labels: map[string]string{"site": "north"}, Registered: true, FirstSeen: rfc(t0.Add(-time.Hour)), LastSeen: rfc(t0.Add(3 * time.Second)), Series: 1}},
		{"d9", device{ID: "d9", Name: "spare", Registered: true}},
	}
	for _, tt := range tests {
		_, body := e.call(t, "GET", "/api/v1/devices/"+tt.id, "read", nil, nil, http.StatusOK)
		if diff := cmp.Diff(tt.want, decode[device](t, body)); diff != "" {
			t.Errorf("GET /api/v1/devices/%s (-want +got):\n%s", tt.id, diff)
		}
	}
	e.wantError(t, "GET", "/api/v1/devices/nope", "read", nil, nil, http.StatusNotFound, "nope")
	e.wantError(t, "GET", "/api/v1/devices/d1?start=tomorrow", "read", nil, nil, http.StatusBadRequest, "tomorrow")
}

func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		method, target string
		status         int
		allow          string
	}{
		{"POST", "/api/v1/series", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/api/v1/anomalies/a1", http.StatusMethodNotAllowed, "GET, HEAD, PATCH"},
		{"GET", "/api/v1/anomalies/a1/acknowledge", http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/api/v1/tokens", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"GET", "/write", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/api/v1/nothing", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		st, h, body, err := e.send(tt.method, tt.target, "admin", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != tt.status || h.Get("Allow") != tt.allow || !json.Valid([]byte(body)) || h.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s %s: got %d Allow %q %s, want %d Allow %q as JSON", tt.method, tt.target, st, h.Get("Allow"), body, tt.status, tt.allow)
		}
	}
}

// TestNoAppStore checks that the management routes answer 501 when the
// server has no application store, and the others still work.
func TestNoAppStore(t *testing.T) {
	e := newEnv(t, envOptions{})
	api := httpapi.New(httpapi.Deps{Series: e.store, Verifier: verifierOf(t, e), Now: clock})
	for _, target := range []string{"/api/v1/anomalies", "/api/v1/maintenance", "/api/v1/detectors", "/api/v1/tokens"} {
		st, body := serve(t, api, "GET", target, e.tokens["admin"])
		if st != http.StatusNotImplemented || !strings.Contains(body, "application store") {
			t.Errorf("GET %s without a store: got %d %s, want 501", target, st, body)
		}
	}
	if st, body := serve(t, api, "GET", "/api/v1/series", e.tokens["read"]); st != http.StatusOK {
		t.Errorf("GET /api/v1/series without a store: got %d %s, want 200", st, body)
	}
}
