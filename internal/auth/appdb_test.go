package auth_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/auth"
)

// TestAppDBTokens verifies tokens stored in the real SQLite application
// store through the AppDBTokens adapter.
func TestAppDBTokens(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	db, err := sqlitedb.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), sqlitedb.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("open sqlitedb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	secrets := map[string]string{}
	for _, tk := range []appdb.APIToken{
		{ID: "w1", Name: "telegraf", Role: appdb.RoleWrite, DevicePrefix: "site1-"},
		{ID: "r1", Name: "grafana", Role: appdb.RoleRead, RevokedAt: now.Add(-time.Minute)},
	} {
		secret, hash, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tk.SecretHash = hash
		if _, err := db.Tokens().Create(t.Context(), tk); err != nil {
			t.Fatalf("create token %s: %v", tk.ID, err)
		}
		secrets[tk.ID] = secret
	}
	v := auth.NewVerifier(auth.AppDBTokens{Repo: db.Tokens()}, func() time.Time { return now })

	p, err := v.Verify(t.Context(), secrets["w1"])
	if err != nil {
		t.Fatalf("Verify(w1): %v", err)
	}
	want := auth.Principal{TokenID: "w1", TokenName: "telegraf", Role: auth.RoleWrite, DevicePrefix: "site1-"}
	if p != want {
		t.Errorf("Verify(w1) = %+v, want %+v", p, want)
	}
	if _, err := v.Verify(t.Context(), secrets["r1"]); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Verify(revoked r1): got %v, want ErrUnauthenticated", err)
	}
	if _, err := v.Verify(t.Context(), "vgl_unknown"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Verify(unknown): got %v, want ErrUnauthenticated", err)
	}
}
