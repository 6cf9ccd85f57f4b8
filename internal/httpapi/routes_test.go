package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/internal/auth"
	"github.com/vigil-iot/vigil/internal/httpapi"
)

// TestEveryRouteAuthenticates proves, for every route of the table, that a
// protected route refuses a missing, wrong, revoked and under-privileged
// token, and that a public route needs none.
func TestEveryRouteAuthenticates(t *testing.T) {
	e := newEnv(t, envOptions{})
	routes := e.api.Routes()
	if len(routes) == 0 {
		t.Fatal("no routes")
	}
	for _, rt := range routes {
		target := strings.ReplaceAll(rt.Path, "{$}", "")
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if rt.Role == auth.RoleNone {
				st, _, body := e.do(t, rt.Method, target, "", nil, nil)
				if st == http.StatusUnauthorized || st == http.StatusForbidden || st >= 500 {
					t.Errorf("public route without token: got %d %s", st, body)
				}
				return
			}
			under := "none"
			if rt.Role > auth.RoleRead {
				under = "read"
			}
			if rt.Role > auth.RoleWrite {
				under = "write"
			}
			tests := []struct {
				name, tok string
				want      int
			}{
				{"missing", "", http.StatusUnauthorized},
				{"wrong", "vgl_wrong", http.StatusUnauthorized},
				{"revoked", "revoked", http.StatusUnauthorized},
				{"under-privileged " + under, under, http.StatusForbidden},
			}
			for _, tt := range tests {
				st, hdr, body := e.do(t, rt.Method, target, tt.tok, nil, strings.NewReader("m,device=d f=1 1"))
				if st != tt.want {
					t.Errorf("%s token: got %d %s, want %d", tt.name, st, body, tt.want)
				}
				if !json.Valid([]byte(body)) || hdr.Get("Content-Type") != "application/json; charset=utf-8" {
					t.Errorf("%s token: body %q (%s) is not a JSON error", tt.name, body, hdr.Get("Content-Type"))
				}
			}
			// The right role passes authentication (whatever the handler
			// then says about the empty request).
			st, _, body := e.do(t, rt.Method, target, rt.Role.String(), nil, nil)
			if st == http.StatusUnauthorized || st == http.StatusForbidden {
				t.Errorf("%s token: got %d %s, want access", rt.Role, st, body)
			}
		})
	}
}

// TestOpenAPIListsEveryRoute checks that the OpenAPI document and the route
// table describe the same (method, path) pairs.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	st, _, body := e.do(t, "GET", "/api/v1/openapi.json", "read", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: got %d", st)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decode OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var registered []string
	for _, rt := range e.api.Routes() {
		registered = append(registered, rt.Method+" "+rt.Path)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is registered but not in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("route %s is in the OpenAPI document but not registered", d)
		}
	}
	if string(httpapi.OpenAPI()) != body {
		t.Error("OpenAPI() differs from the served document")
	}
}
