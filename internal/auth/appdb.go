package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// AppDBTokens adapts an application-DB token repository to TokenStore.
type AppDBTokens struct {
	Repo appdb.TokenRepository
}

var _ TokenStore = AppDBTokens{}

// TokenByHash implements TokenStore over appdb.TokenRepository.GetByHash,
// mapping appdb.ErrNotFound to ErrUnknownToken.
func (a AppDBTokens) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := a.Repo.GetByHash(ctx, hash)
	if errors.Is(err, appdb.ErrNotFound) {
		return Token{}, fmt.Errorf("token by hash: %w", ErrUnknownToken)
	}
	if err != nil {
		return Token{}, fmt.Errorf("token by hash: %w", err)
	}
	role, err := ParseRole(string(t.Role))
	if err != nil {
		role = RoleNone // Verifier refuses it as forbidden
	}
	return Token{
		ID:           t.ID,
		Name:         t.Name,
		Role:         role,
		DevicePrefix: t.DevicePrefix,
		ExpiresAt:    t.ExpiresAt,
		RevokedAt:    t.RevokedAt,
		Hash:         t.SecretHash,
	}, nil
}
