package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/auth"
)

const (
	bootstrapKey       = "bootstrap.admin_token"
	adminTokenFileName = "admin-token"
)

// Bootstrap makes sure an admin token exists. On the first start it creates
// one — from secret when not empty (VIGIL_BOOTSTRAP_TOKEN, for automation),
// otherwise a random one — prints it once to out and writes it to
// <data-dir>/admin-token, readable only by the owner. Later starts do
// nothing.
func (a *App) Bootstrap(ctx context.Context, secret string, out io.Writer) error {
	if _, err := a.DB.SystemState().Get(ctx, bootstrapKey); err == nil {
		return nil
	} else if !errors.Is(err, appdb.ErrNotFound) {
		return fmt.Errorf("bootstrap: read system state: %w", err)
	}
	var hash []byte
	if secret == "" {
		var err error
		if secret, hash, err = auth.Generate(); err != nil {
			return fmt.Errorf("bootstrap: generate admin token: %w", err)
		}
	} else {
		hash = auth.Hash(secret)
	}
	file := filepath.Join(a.cfg.DataDir, adminTokenFileName)
	err := a.DB.InTx(ctx, func(tx appdb.Tx) error {
		tok, err := tx.Tokens().Create(ctx, appdb.APIToken{Name: "bootstrap admin", Role: appdb.RoleAdmin, SecretHash: hash})
		if err != nil {
			return fmt.Errorf("create admin token: %w", err)
		}
		if err := writeSecretFile(file, secret); err != nil {
			return err
		}
		_, err = tx.SystemState().Put(ctx, appdb.SystemState{Key: bootstrapKey, Value: tok.ID})
		return err
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fmt.Fprintf(out, "\nCreated the first admin token (shown once; also in %s, mode 0600):\n\n    %s\n\n", file, secret)
	return nil
}

func writeSecretFile(path, secret string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
