package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// CreateToken creates an API token and returns it with its secret, which is
// not stored and cannot be shown again.
func (a *App) CreateToken(ctx context.Context, name string, role appdb.Role, devicePrefix string) (appdb.APIToken, string, error) {
	secret, hash, err := auth.Generate()
	if err != nil {
		return appdb.APIToken{}, "", fmt.Errorf("generate token: %w", err)
	}
	tok, err := a.DB.Tokens().Create(ctx, appdb.APIToken{Name: name, Role: role, DevicePrefix: devicePrefix, SecretHash: hash})
	if err != nil {
		return appdb.APIToken{}, "", fmt.Errorf("create token %q: %w", name, err)
	}
	return tok, secret, nil
}

// Tokens lists every API token, oldest first.
func (a *App) Tokens(ctx context.Context) ([]appdb.APIToken, error) {
	var all []appdb.APIToken
	f := appdb.TokenFilter{}
	for {
		page, next, err := a.DB.Tokens().Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		f.Cursor = next
	}
}

// RevokeToken revokes the token with this ID; requests with it are refused
// from then on.
func (a *App) RevokeToken(ctx context.Context, id string) (appdb.APIToken, error) {
	for {
		tok, err := a.DB.Tokens().Get(ctx, id)
		if err != nil {
			return appdb.APIToken{}, fmt.Errorf("revoke token %s: %w", id, err)
		}
		if !tok.RevokedAt.IsZero() {
			return tok, nil
		}
		tok.RevokedAt = a.opts.Now()
		tok, err = a.DB.Tokens().Update(ctx, tok)
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, appdb.ErrConflict) {
			return appdb.APIToken{}, fmt.Errorf("revoke token %s: %w", id, err)
		}
	}
}
