package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// tokenJSON is an API token in responses: never its secret or hash.
type tokenJSON struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Role         appdb.Role `json:"role"`
	DevicePrefix string     `json:"device_prefix"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   time.Time  `json:"last_used_at,omitzero"`
	ExpiresAt    time.Time  `json:"expires_at,omitzero"`
	RevokedAt    time.Time  `json:"revoked_at,omitzero"`
	Version      int64      `json:"version"`
}

func tokenOf(t appdb.APIToken) tokenJSON {
	return tokenJSON{
		ID: t.ID, Name: t.Name, Role: t.Role, DevicePrefix: t.DevicePrefix, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, Version: t.Version,
	}
}

func parseAppRole(field, v string) (appdb.Role, error) {
	switch r := appdb.Role(v); r {
	case appdb.RoleRead, appdb.RoleWrite, appdb.RoleAdmin:
		return r, nil
	}
	return "", badRequest("%s %q: want read, write or admin", field, v)
}

// listTokens is GET /api/v1/tokens: filters role, revoked; by creation,
// ascending by default.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	q := r.URL.Query()
	page, err := pageOf(q, appdb.Asc)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	f := appdb.TokenFilter{Page: page}
	if v := q.Get("role"); v != "" {
		f.Role, err = parseAppRole("role", v)
	}
	if err == nil {
		f.Revoked, err = boolParam(q, "revoked")
	}
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	ts, next, err := db.Tokens().Find(r.Context(), f)
	writePage(s, w, r, "tokens", ts, next, err, tokenOf)
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	DevicePrefix string `json:"device_prefix"`
	ExpiresAt    string `json:"expires_at"` // optional
}

// createToken is POST /api/v1/tokens: it returns the secret, once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	t := appdb.APIToken{Name: req.Name, DevicePrefix: req.DevicePrefix}
	switch {
	case req.Name == "":
		err = badRequest("name: required")
	case len(req.Name) > appdb.MaxIDLen, len(req.DevicePrefix) > appdb.MaxIDLen:
		err = badRequest("name, device_prefix: at most %d bytes", appdb.MaxIDLen)
	case req.Role == "":
		err = badRequest("role: required, one of read, write, admin")
	default:
		t.Role, err = parseAppRole("role", req.Role)
	}
	if err == nil && req.ExpiresAt != "" {
		if t.ExpiresAt, err = s.requestTime("expires_at", req.ExpiresAt); err == nil && !t.ExpiresAt.After(s.now()) {
			err = badRequest("expires_at: %s is not in the future", t.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	secret, hash, err := auth.Generate()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	t.SecretHash = hash
	if t, err = db.Tokens().Create(r.Context(), t); err != nil {
		writeError(w, r, styleV2, s.log, fmt.Errorf("create token %q: %w", req.Name, err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		Token  tokenJSON `json:"token"`
		Secret string    `json:"secret"`
	}{tokenOf(t), secret})
}

// revokeToken is DELETE /api/v1/tokens/{id}: it revokes the token (the
// record stays, for audit). Revoking a revoked token is a no-op. The token is
// refused at once by this server, and by others within their cache TTL
// (auth.DefaultCacheTTL).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	db, err := s.store()
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	id := r.PathValue("id")
	for attempt := 1; ; attempt++ {
		var t appdb.APIToken
		if t, err = db.Tokens().Get(r.Context(), id); err != nil || !t.RevokedAt.IsZero() {
			break
		}
		t.RevokedAt = s.now()
		if _, err = db.Tokens().Update(r.Context(), t); !errors.Is(err, appdb.ErrConflict) || attempt >= maxChangeAttempts {
			break
		}
	}
	if f, ok := s.d.Verifier.(interface{ Forget(tokenID string) }); ok {
		f.Forget(id)
	}
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
