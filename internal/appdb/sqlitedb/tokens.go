package sqlitedb

import (
	"context"
	"database/sql"
	"encoding/hex"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type tokenRepo struct{ x repos }

var tokenTable = table[appdb.APIToken]{
	name: "api_tokens",
	cols: "id, name, role, device_prefix, secret_hash, last_used_at, expires_at, revoked_at, created_at, updated_at, version",
	scan: func(s scanner) (appdb.APIToken, error) {
		var (
			t                      appdb.APIToken
			role                   string
			used, expires, revoked sql.NullInt64
			cat, uat               int64
		)
		if err := s.Scan(&t.ID, &t.Name, &role, &t.DevicePrefix, &t.SecretHash, &used, &expires, &revoked, &cat, &uat, &t.Version); err != nil {
			return t, err
		}
		t.Role = appdb.Role(role)
		t.SecretHash = nilIfEmpty(t.SecretHash)
		t.LastUsedAt, t.ExpiresAt, t.RevokedAt = fromDBTime(used), fromDBTime(expires), fromDBTime(revoked)
		t.CreatedAt, t.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return t, nil
	},
}

var tokenMutable = []string{"name", "role", "device_prefix", "secret_hash", "last_used_at", "expires_at", "revoked_at"}

func tokenArgs(t appdb.APIToken) []any {
	return []any{t.Name, string(t.Role), t.DevicePrefix, dbBytes(t.SecretHash), dbTime(t.LastUsedAt), dbTime(t.ExpiresAt), dbTime(t.RevokedAt)}
}

func (r tokenRepo) Create(ctx context.Context, t appdb.APIToken) (appdb.APIToken, error) {
	const op = "create token"
	if err := r.x.check(ctx, op, t.ID); err != nil {
		return appdb.APIToken{}, err
	}
	now := r.x.now()
	if t.ID == "" {
		t.ID = appdb.NewID(now)
	}
	t.Normalize()
	if err := t.Validate(); err != nil {
		return appdb.APIToken{}, invalid(op, t.ID, err)
	}
	t.CreatedAt, t.UpdatedAt, t.Version = now, now, 1
	cols := append(append([]string{"id"}, tokenMutable...), "created_at", "updated_at", "version")
	args := append(append([]any{t.ID}, tokenArgs(t)...), now.UnixMicro(), now.UnixMicro(), t.Version)
	if err := tokenTable.insert(ctx, r.x.w, op, t.ID, cols, args); err != nil {
		return appdb.APIToken{}, err
	}
	return t, nil
}

func (r tokenRepo) Get(ctx context.Context, id string) (appdb.APIToken, error) {
	return tokenTable.get(ctx, r.x, "get token", id, "id = ?", id)
}

func (r tokenRepo) GetByHash(ctx context.Context, hash []byte) (appdb.APIToken, error) {
	// The error names a prefix of the hash, never the whole of it.
	name := hex.EncodeToString(hash[:min(len(hash), 4)]) + "..."
	return tokenTable.get(ctx, r.x, "get token by hash", name, "secret_hash = ?", hash)
}

func (r tokenRepo) Update(ctx context.Context, t appdb.APIToken) (appdb.APIToken, error) {
	const op = "update token"
	if err := r.x.check(ctx, op, t.ID); err != nil {
		return appdb.APIToken{}, err
	}
	t.Normalize()
	if err := t.Validate(); err != nil {
		return appdb.APIToken{}, invalid(op, t.ID, err)
	}
	return tokenTable.update(ctx, r.x.w, op, t.ID, tokenMutable, tokenArgs(t), t.Version, r.x.now(), "id = ?", t.ID)
}

func (r tokenRepo) Delete(ctx context.Context, id string) error {
	return tokenTable.remove(ctx, r.x, "delete token", id, "id = ?", id)
}

func (r tokenRepo) Find(ctx context.Context, f appdb.TokenFilter) ([]appdb.APIToken, string, error) {
	var w where
	w.eq("role", string(f.Role))
	if f.Revoked != nil {
		if *f.Revoked {
			w.add("revoked_at IS NOT NULL")
		} else {
			w.add("revoked_at IS NULL")
		}
	}
	return find(ctx, r.x, "find tokens", tokenTable, w, keyset{sortCol: "created_at", tieCol: "id"}, f.Page,
		func(t appdb.APIToken) appdb.Cursor { return appdb.Cursor{Int: t.CreatedAt.UnixMicro(), ID: t.ID} })
}

func (r tokenRepo) Touch(ctx context.Context, id string, at time.Time) error {
	const op = "touch token"
	if err := r.x.check(ctx, op, id); err != nil {
		return err
	}
	at = appdb.NormalizeTime(at)
	if at.IsZero() {
		return invalid(op, id, appdb.Invalid("at", "zero time"))
	}
	res, err := r.x.w.ExecContext(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
		at.UnixMicro(), id, at.UnixMicro())
	if err != nil {
		return wrap(op, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(op, id, err)
	} else if n > 0 {
		return nil
	}
	var one int
	return wrap(op, id, r.x.w.QueryRowContext(ctx, "SELECT 1 FROM api_tokens WHERE id = ?", id).Scan(&one))
}
