package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/internal/appdb"
)

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("pragma %s: %v", name, err)
	}
	return v
}

// TestConnectionSettings checks the settings the durability and concurrency
// claims of the package comment rest on.
func TestConnectionSettings(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		db         *sql.DB
		name, want string
	}{
		{s.writer, "journal_mode", "wal"},
		{s.writer, "synchronous", "2"}, // FULL
		{s.writer, "busy_timeout", "10000"},
		{s.writer, "foreign_keys", "1"},
		{s.reader, "query_only", "1"},
		{s.reader, "busy_timeout", "10000"},
	}
	for _, tt := range tests {
		if got := pragma(t, tt.db, tt.name); got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := s.writer.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool size %d, want 1", got)
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	versions := func() []string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, "SELECT version, name FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v, name string
			if err := rows.Scan(&v, &name); err != nil {
				t.Fatal(err)
			}
			out = append(out, v+" "+name)
		}
		return out
	}
	for range 3 { // opening again applies nothing twice
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got := versions()
		if len(got) != SchemaVersion() || got[0] != "1 0001_init" {
			t.Fatalf("schema_migrations = %q, want one row per migration up to %d starting with %q", got, SchemaVersion(), "1 0001_init")
		}
	}
	if SchemaVersion() < 1 {
		t.Fatalf("SchemaVersion() = %d, want >= 1", SchemaVersion())
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future', 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, appdb.ErrSchemaTooNew) {
		t.Fatalf("open of a database from a newer binary: got %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q does not name the database's schema version 999", err)
	}
}

func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"empty", "", appdb.ErrInvalid},
		{"uri characters", filepath.Join(dir, "a?b#c%20d.db"), nil},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "app.db"), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.path, Options{})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("open %q: %v", tt.path, err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				if s != nil {
					s.Close()
				}
				t.Fatalf("open %q: got %v, want %v", tt.path, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer s.Close()
			if _, err := os.Stat(tt.path); err != nil {
				t.Errorf("database file not at %q: %v", tt.path, err)
			}
		})
	}
}

var errAny = errors.New("any error")
