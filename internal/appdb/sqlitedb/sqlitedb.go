// Package sqlitedb is the embedded backend of the application store: one
// SQLite file, through the pure-Go driver modernc.org/sqlite.
//
// # Connections and durability
//
// The file is in WAL mode with synchronous=FULL: a transaction is fsynced to
// the WAL before its commit returns, so an acknowledged write survives a
// process crash (kill -9) and also an OS crash or power loss. All writes go
// through a single writer connection (database/sql pool of size 1; every
// transaction BEGIN IMMEDIATE), so writers in this process queue in Go instead
// of failing with SQLITE_BUSY; busy_timeout (10 s) covers other processes
// opening the same file. Reads outside transactions use a separate pool of
// query_only connections and see every committed write (WAL snapshot per
// statement).
//
// # Schema
//
// Migrations are the files migrations/NNNN_name.sql, embedded in the binary
// and applied in order by Open, each in one transaction recorded in the table
// schema_migrations (version, name, applied_at). Reopening applies nothing
// new. A database carrying a version this binary does not know fails Open
// with appdb.ErrSchemaTooNew. Times are stored as BIGINT Unix microseconds,
// JSON as TEXT, bytes as BLOB.
package sqlitedb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-iot/vigil/internal/appdb"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives migration and shutdown messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock for CreatedAt, UpdatedAt and outbox due times; nil
	// means time.Now.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for a lock held by another
	// process; 0 means 10 s.
	BusyTimeout time.Duration
	// MaxReaders is the size of the read pool; 0 means max(4, GOMAXPROCS).
	MaxReaders int
}

// Store is the SQLite application store. It is safe for concurrent use.
type Store struct {
	repos
	writer *sql.DB
	reader *sql.DB
	now    func() time.Time
	log    *slog.Logger
	path   string

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ appdb.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies pending
// migrations and returns the store. It starts no goroutines.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlitedb: open: %w", appdb.Invalid("path", "empty"))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxReaders <= 0 {
		opts.MaxReaders = max(4, runtime.GOMAXPROCS(0))
	}
	base := "file:" + escapePath(path) + "?_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)"
	writer, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer connection is opened (and the file put in WAL mode) before
	// any reader, and migrations run before any read.
	if err := migrate(ctx, writer, opts.Logger, opts.Now); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.MaxReaders)
	reader.SetMaxIdleConns(opts.MaxReaders)
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	s := &Store{writer: writer, reader: reader, now: opts.Now, log: opts.Logger, path: path}
	s.repos = repos{s: s, w: writer, r: reader}
	return s, nil
}

// escapePath escapes the characters that would end or alter the path part of
// an SQLite URI filename.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Close closes the store. It is idempotent; operations after it fail with
// appdb.ErrClosed. Operations still running may fail with appdb.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = errors.Join(s.reader.Close(), s.writer.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlitedb: close %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlitedb: ping: %w", appdb.ErrClosed)
	}
	var one int
	if err := s.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return wrap("ping", "", err)
	}
	return nil
}

// InTx runs fn in one write transaction (BEGIN IMMEDIATE on the single writer
// connection). See appdb.Store.
func (s *Store) InTx(ctx context.Context, fn func(tx appdb.Tx) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("sqlitedb: tx: %w", appdb.ErrClosed)
	}
	sqlTx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin tx", "", err)
	}
	finished := new(atomic.Bool)
	t := repos{s: s, w: sqlTx, r: sqlTx, tx: sqlTx, finished: finished}
	done := false
	defer func() {
		finished.Store(true)
		if !done {
			_ = sqlTx.Rollback() // fn panicked; the panic goes on
		}
	}()
	if err := fn(t); err != nil {
		done = true
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			s.log.Warn("rollback failed", "err", rbErr)
		}
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return wrap("commit tx", "", err)
	}
	return nil
}

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationsFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q: name is not NNNN_name.sql", name)
		}
		b, err := migrationsFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions must be 1, 2, ...)", ms[i].name, ms[i].version, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the highest migration version this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func migrate(ctx context.Context, db *sql.DB, log *slog.Logger, now func() time.Time) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("migrate: database at schema version %d, this binary knows up to %d: %w", current, latest, appdb.ErrSchemaTooNew)
	}
	for _, m := range ms[current:] {
		if err := applyMigration(ctx, db, m, now); err != nil {
			return err
		}
		log.Info("applied migration", "version", m.version, "name", m.name)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, now func() time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Another process may have applied it meanwhile: BEGIN IMMEDIATE
	// serialises us behind it, so re-check inside the transaction.
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.version, m.name, now().UnixMicro()); err != nil {
		return fmt.Errorf("migrate %s: record: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", m.name, err)
	}
	return nil
}

// wrap classifies err into an appdb kind and names the operation and id.
func wrap(op, id string, err error) error {
	if err == nil {
		return nil
	}
	kind := classify(err)
	where := "sqlitedb: " + op
	if id != "" {
		where += " " + strconv.Quote(id)
	}
	if kind == nil || errors.Is(err, kind) {
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w: %w", where, kind, err)
}

func classify(err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return appdb.ErrNotFound
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone):
		return appdb.ErrClosed
	case err.Error() == "sql: database is closed":
		return appdb.ErrClosed
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return appdb.ErrConflict
		}
	}
	return nil
}
