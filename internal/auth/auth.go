// Package auth authenticates API requests with bearer tokens and authorises
// them by role.
//
// A token is a random secret ("vgl_" followed by 43 base64url characters,
// 256 bits from crypto/rand) shown once to its owner; the store keeps only
// its SHA-256 hash, so a leaked database does not leak credentials. Because
// secrets are high-entropy, an unsalted fast hash is sufficient: no dictionary
// applies. A request presents the secret in one of the forms InfluxDB clients
// use (see CredentialFromRequest); the Verifier hashes it, looks the hash up
// in a TokenStore, and refuses unknown, revoked and expired tokens. A Cache
// in front of the store keeps found tokens for a TTL (DefaultCacheTTL, 10 s:
// a revocation made elsewhere takes effect within it; Verifier.Forget makes
// one made in this process immediate) and records each token's use in the
// store at most once a minute.
//
// Roles are ordered: admin allows everything write allows, write everything
// read allows. A token may be limited to devices whose ID starts with a
// prefix; the limit applies to writes (ingest refuses points of other
// devices).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error kinds. Callers branch with errors.Is.
var (
	// ErrUnauthenticated: no credential, or one that matches no usable
	// token (unknown, revoked or expired). Maps to HTTP 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token is valid but its role or device prefix does
	// not allow the operation. Maps to HTTP 403.
	ErrForbidden = errors.New("forbidden")
	// ErrUnknownToken is what a TokenStore returns (wrapped) when no token
	// has the hash looked up.
	ErrUnknownToken = errors.New("unknown token")
)

// Role is what a token may do. Roles are ordered: a higher role allows
// everything a lower one does.
type Role int

// Roles, in increasing order of privilege. The zero Role allows nothing.
const (
	RoleNone Role = iota
	RoleRead
	RoleWrite
	RoleAdmin
)

// ParseRole parses "read", "write" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "write":
		return RoleWrite, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("parse role %q: want read, write or admin", s)
}

// String returns "read", "write", "admin" or "none".
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Allows reports whether r includes the privileges of need.
func (r Role) Allows(need Role) bool { return r >= need && r > RoleNone }

// Token is a stored API token, as a TokenStore returns it.
type Token struct {
	ID   string
	Name string
	Role Role
	// DevicePrefix, when not empty, limits writes to devices whose ID
	// starts with it.
	DevicePrefix string
	ExpiresAt    time.Time // zero: never
	RevokedAt    time.Time // zero: not revoked
	// Hash is the SHA-256 of the secret.
	Hash []byte
}

// TokenStore finds tokens by the hash of their secret.
//
// TokenByHash must be safe for concurrent use. It returns the token whatever
// its revocation or expiry (the Verifier checks those), and an error wrapping
// ErrUnknownToken when no token has the hash; any other error is a failure of
// the store.
type TokenStore interface {
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
}

// SecretPrefix starts every generated secret, so that secrets are
// recognisable in logs and by secret scanners.
const SecretPrefix = "vgl_"

// Generate returns a new random secret and its hash. Only the hash is to be
// stored; the secret is shown once to its owner.
func Generate() (secret string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("generate token secret: %w", err)
	}
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Hash(secret), nil
}

// Hash returns the SHA-256 hash of secret, the form in which tokens are
// stored and looked up.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Principal is who a request authenticated as.
type Principal struct {
	TokenID      string
	TokenName    string
	Role         Role
	DevicePrefix string
}

// Require returns nil when p's role allows need, or an error wrapping
// ErrForbidden naming both roles.
func (p Principal) Require(need Role) error {
	if p.Role.Allows(need) {
		return nil
	}
	return fmt.Errorf("token %q has role %s, operation needs %s: %w", p.TokenID, p.Role, need, ErrForbidden)
}

// AllowsDevice reports whether p may write data of device.
func (p Principal) AllowsDevice(device string) bool {
	return strings.HasPrefix(device, p.DevicePrefix)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored in ctx by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Verifier checks secrets against a TokenStore. It is safe for concurrent
// use. When the store records use (UseRecorder, e.g. a Cache with Touch),
// every successful verification is reported to it.
type Verifier struct {
	store TokenStore
	now   func() time.Time
}

// NewVerifier returns a Verifier over store; now is the clock that decides
// expiry.
func NewVerifier(store TokenStore, now func() time.Time) *Verifier {
	return &Verifier{store: store, now: now}
}

// Verify returns the principal of secret. An empty, unknown, revoked or
// expired secret gives an error wrapping ErrUnauthenticated; a failing store
// gives its error, not wrapped in ErrUnauthenticated.
func (v *Verifier) Verify(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, fmt.Errorf("verify token: no credential: %w", ErrUnauthenticated)
	}
	h := Hash(secret)
	t, err := v.store.TokenByHash(ctx, h)
	if errors.Is(err, ErrUnknownToken) {
		return Principal{}, fmt.Errorf("verify token: unknown token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify token: look up: %w", err)
	}
	// The store found the token by hash; compare again in constant time so
	// that a store matching loosely (prefix, case) can never let a wrong
	// secret in.
	if subtle.ConstantTimeCompare(h, t.Hash) != 1 {
		return Principal{}, fmt.Errorf("verify token: unknown token: %w", ErrUnauthenticated)
	}
	now := v.now()
	if !t.RevokedAt.IsZero() && !t.RevokedAt.After(now) {
		return Principal{}, fmt.Errorf("verify token %q: revoked at %s: %w", t.ID, t.RevokedAt.UTC().Format(time.RFC3339), ErrUnauthenticated)
	}
	if !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now) {
		return Principal{}, fmt.Errorf("verify token %q: expired at %s: %w", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339), ErrUnauthenticated)
	}
	if t.Role <= RoleNone || t.Role > RoleAdmin {
		return Principal{}, fmt.Errorf("verify token %q: no valid role: %w", t.ID, ErrForbidden)
	}
	if u, ok := v.store.(UseRecorder); ok {
		u.RecordUse(ctx, t.ID, now)
	}
	return Principal{TokenID: t.ID, TokenName: t.Name, Role: t.Role, DevicePrefix: t.DevicePrefix}, nil
}

// CredentialFromRequest extracts the token secret of r, accepting, in this
// order: "Authorization: Token X" (InfluxDB 2.x), "Authorization: Bearer X",
// "Authorization: Basic" with the secret as password (InfluxDB 1.x clients,
// Telegraf), and the InfluxDB 1.x query parameter p (u is ignored). It
// reports false when r carries none.
func CredentialFromRequest(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(scheme) {
		case "token", "bearer":
			return rest, rest != ""
		case "basic":
			if _, pw, ok := r.BasicAuth(); ok {
				return pw, pw != ""
			}
		}
		return "", false
	}
	if p := r.URL.Query().Get("p"); p != "" {
		return p, true
	}
	return "", false
}
