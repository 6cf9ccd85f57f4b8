package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/auth"
)

func TestGenerate(t *testing.T) {
	s1, h1, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 {
		t.Fatalf("two secrets are equal: %q", s1)
	}
	if !strings.HasPrefix(s1, auth.SecretPrefix) || len(s1) != len(auth.SecretPrefix)+43 {
		t.Errorf("secret %q: want prefix %q and 43 characters after it", s1, auth.SecretPrefix)
	}
	if got := auth.Hash(s1); string(got) != string(h1) || len(h1) != 32 {
		t.Errorf("Hash(secret) = %x, Generate hash = %x; want equal, 32 bytes", got, h1)
	}
}

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, need auth.Role
		want       bool
	}{
		{auth.RoleAdmin, auth.RoleRead, true},
		{auth.RoleAdmin, auth.RoleWrite, true},
		{auth.RoleAdmin, auth.RoleAdmin, true},
		{auth.RoleWrite, auth.RoleRead, true},
		{auth.RoleWrite, auth.RoleWrite, true},
		{auth.RoleWrite, auth.RoleAdmin, false},
		{auth.RoleRead, auth.RoleRead, true},
		{auth.RoleRead, auth.RoleWrite, false},
		{auth.RoleNone, auth.RoleNone, false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%s.Allows(%s) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
	for _, name := range []string{"read", "write", "admin"} {
		r, err := auth.ParseRole(name)
		if err != nil || r.String() != name {
			t.Errorf("ParseRole(%q) = %v, %v; want round trip", name, r, err)
		}
	}
	if _, err := auth.ParseRole("root"); err == nil {
		t.Error(`ParseRole("root"): got nil error`)
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	mk := func(id string, role auth.Role, mod func(*auth.Token)) (string, auth.Token) {
		s, h, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tok := auth.Token{ID: id, Role: role, Hash: h}
		if mod != nil {
			mod(&tok)
		}
		return s, tok
	}
	good, goodTok := mk("good", auth.RoleWrite, func(t *auth.Token) { t.DevicePrefix = "site1-" })
	revoked, revokedTok := mk("revoked", auth.RoleAdmin, func(t *auth.Token) { t.RevokedAt = now.Add(-time.Minute) })
	revokesLater, laterTok := mk("later", auth.RoleRead, func(t *auth.Token) { t.RevokedAt = now.Add(time.Hour) })
	expired, expiredTok := mk("expired", auth.RoleRead, func(t *auth.Token) { t.ExpiresAt = now })
	noRole, noRoleTok := mk("norole", auth.RoleNone, nil)
	store := auth.NewMemoryStore(goodTok, revokedTok, laterTok, expiredTok, noRoleTok)
	v := auth.NewVerifier(store, func() time.Time { return now })

	tests := []struct {
		name, secret string
		wantErr      error
		wantID       string
	}{
		{"valid", good, nil, "good"},
		{"revoked later", revokesLater, nil, "later"},
		{"empty", "", auth.ErrUnauthenticated, ""},
		{"unknown", "vgl_nope", auth.ErrUnauthenticated, ""},
		{"revoked", revoked, auth.ErrUnauthenticated, ""},
		{"expired", expired, auth.ErrUnauthenticated, ""},
		{"no role", noRole, auth.ErrForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tt.secret)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify: got error %v, want %v", err, tt.wantErr)
			}
			if p.TokenID != tt.wantID {
				t.Errorf("Verify: got token %q, want %q", p.TokenID, tt.wantID)
			}
		})
	}
	p, _ := v.Verify(t.Context(), good)
	if !p.AllowsDevice("site1-pump") || p.AllowsDevice("site2-pump") {
		t.Errorf("prefix %q: AllowsDevice(site1-pump)=%v AllowsDevice(site2-pump)=%v; want true, false",
			p.DevicePrefix, p.AllowsDevice("site1-pump"), p.AllowsDevice("site2-pump"))
	}
	if err := p.Require(auth.RoleAdmin); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("write token Require(admin): got %v, want ErrForbidden", err)
	}
}

func TestCredentialFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header string
		basic  []string
		want   string
		wantOK bool
	}{
		{name: "token scheme", target: "/", header: "Token abc", want: "abc", wantOK: true},
		{name: "bearer scheme", target: "/", header: "Bearer abc", want: "abc", wantOK: true},
		{name: "lowercase scheme", target: "/", header: "token abc", want: "abc", wantOK: true},
		{name: "basic password", target: "/", basic: []string{"user", "abc"}, want: "abc", wantOK: true},
		{name: "query p", target: "/write?u=x&p=abc", want: "abc", wantOK: true},
		{name: "header wins over query", target: "/write?p=q", header: "Token h", want: "h", wantOK: true},
		{name: "none", target: "/", wantOK: false},
		{name: "empty token", target: "/", header: "Token ", wantOK: false},
		{name: "unknown scheme", target: "/", header: "Digest abc", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.basic != nil {
				r.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			got, ok := auth.CredentialFromRequest(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("CredentialFromRequest(%s, %q) = %q, %v; want %q, %v", tt.target, tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
