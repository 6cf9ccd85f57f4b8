package sqlitedb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// repos carries what every repository needs: where to write, where to read,
// and, inside InTx, the transaction and whether it has finished.
type repos struct {
	s        *Store
	w        querier      // writer DB, or the transaction
	r        querier      // reader DB, or the transaction
	tx       *sql.Tx      // non-nil inside InTx
	finished *atomic.Bool // non-nil inside InTx; true once fn returned
}

func (x repos) Devices() appdb.DeviceRepository           { return deviceRepo{x} }
func (x repos) Detectors() appdb.DetectorConfigRepository { return detectorRepo{x} }
func (x repos) Anomalies() appdb.AnomalyRepository        { return anomalyRepo{x} }
func (x repos) Maintenance() appdb.MaintenanceRepository  { return maintenanceRepo{x} }
func (x repos) Models() appdb.ModelMetaRepository         { return modelRepo{x} }
func (x repos) Tokens() appdb.TokenRepository             { return tokenRepo{x} }
func (x repos) Outbox() appdb.OutboxRepository            { return outboxRepo{x} }
func (x repos) Checkpoints() appdb.CheckpointRepository   { return checkpointRepo{x} }
func (x repos) SystemState() appdb.SystemStateRepository  { return stateRepo{x} }
func (x repos) now() time.Time                            { return appdb.NormalizeTime(x.s.now()) }

// check fails with ErrClosed when the store is closed or the transaction
// has finished, and with the context's error when ctx is done.
func (x repos) check(ctx context.Context, op, id string) error {
	if x.s.closed.Load() || (x.finished != nil && x.finished.Load()) {
		return wrap(op, id, appdb.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return wrap(op, id, err)
	}
	return nil
}

// atomically runs fn in one transaction: the enclosing one inside InTx, else
// a new one on the writer. fn returns errors already wrapped.
func (x repos) atomically(ctx context.Context, op, id string, fn func(q querier) error) error {
	if x.tx != nil {
		return fn(x.tx)
	}
	tx, err := x.s.writer.BeginTx(ctx, nil)
	if err != nil {
		return wrap(op, id, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap(op, id, err)
	}
	return nil
}

// table describes one entity table for the generic helpers.
type table[T any] struct {
	name string
	cols string // select list, in scan order
	scan func(scanner) (T, error)
}

func (t table[T]) get(ctx context.Context, x repos, op, id, cond string, args ...any) (T, error) {
	var zero T
	if err := x.check(ctx, op, id); err != nil {
		return zero, err
	}
	v, err := t.scan(x.r.QueryRowContext(ctx, "SELECT "+t.cols+" FROM "+t.name+" WHERE "+cond, args...))
	if err != nil {
		return zero, wrap(op, id, err)
	}
	return v, nil
}

// insert inserts one row; a duplicate key is ErrConflict.
func (t table[T]) insert(ctx context.Context, q querier, op, id string, cols []string, args []any) error {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	_, err := q.ExecContext(ctx, "INSERT INTO "+t.name+" ("+strings.Join(cols, ", ")+") VALUES ("+marks+")", args...)
	return wrap(op, id, err)
}

// update sets cols (plus updated_at, version+1) on the row matching cond at
// version, and returns the row as stored. A missing row is ErrNotFound, a
// stale version ErrConflict.
func (t table[T]) update(ctx context.Context, q querier, op, id string, cols []string, args []any, version int64, now time.Time, cond string, condArgs ...any) (T, error) {
	var zero T
	set := make([]string, 0, len(cols)+2)
	for _, c := range cols {
		set = append(set, c+" = ?")
	}
	set = append(set, "updated_at = ?", "version = version + 1")
	all := append(append(append([]any{}, args...), now.UnixMicro()), condArgs...)
	all = append(all, version)
	v, err := t.scan(q.QueryRowContext(ctx, "UPDATE "+t.name+" SET "+strings.Join(set, ", ")+
		" WHERE "+cond+" AND version = ? RETURNING "+t.cols, all...))
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return zero, wrap(op, id, err)
	}
	var one int
	err = q.QueryRowContext(ctx, "SELECT 1 FROM "+t.name+" WHERE "+cond, condArgs...).Scan(&one)
	if err == nil {
		return zero, wrap(op, id, fmt.Errorf("version %d is stale: %w", version, appdb.ErrConflict))
	}
	return zero, wrap(op, id, err)
}

// remove deletes the row matching cond; none is ErrNotFound.
func (t table[T]) remove(ctx context.Context, x repos, op, id, cond string, args ...any) error {
	if err := x.check(ctx, op, id); err != nil {
		return err
	}
	res, err := x.w.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE "+cond, args...)
	if err != nil {
		return wrap(op, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, id, err)
	}
	if n == 0 {
		return wrap(op, id, appdb.ErrNotFound)
	}
	return nil
}

// where accumulates the conditions of a Find.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// eq adds col = v when v is not empty.
func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

// timeRange adds From <= col < To for the bounds that are set.
func (w *where) timeRange(col string, r appdb.TimeRange) {
	if !r.From.IsZero() {
		w.add(col+" >= ?", r.From.UnixMicro())
	}
	if !r.To.IsZero() {
		w.add(col+" < ?", r.To.UnixMicro())
	}
}

// prefix adds col LIKE-free prefix matching, usable with the index.
func (w *where) prefix(col, p string) {
	if p == "" {
		return
	}
	w.add(col+" >= ?", p)
	if up, ok := prefixEnd(p); ok {
		w.add(col+" < ?", up)
	}
}

// prefixEnd returns the smallest string greater than every string with prefix
// p, in byte order, or false when there is none.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// keyset is the sort of a Find: the sort column and the unique tie-breaker
// (the same column when the sort column is unique).
type keyset struct {
	sortCol, tieCol string
	str             bool // sort column is text (else integer)
}

// find runs one page of a Find.
func find[T any](ctx context.Context, x repos, op string, t table[T], w where, ks keyset, p appdb.Page, key func(T) appdb.Cursor) ([]T, string, error) {
	if err := x.check(ctx, op, ""); err != nil {
		return nil, "", err
	}
	if err := p.Validate(); err != nil {
		return nil, "", wrap(op, "", err)
	}
	limit := p.EffectiveLimit()
	dir, cmp := "ASC", ">"
	if p.Order == appdb.Desc {
		dir, cmp = "DESC", "<"
	}
	if p.Cursor != "" {
		c, err := appdb.DecodeCursor(p.Cursor, p.Order)
		if err != nil {
			return nil, "", wrap(op, "", err)
		}
		if ks.sortCol == ks.tieCol {
			w.add(ks.sortCol+" "+cmp+" ?", c.ID)
		} else {
			var sv any = c.Int
			if ks.str {
				sv = c.Str
			}
			w.add("("+ks.sortCol+", "+ks.tieCol+") "+cmp+" (?, ?)", sv, c.ID)
		}
	}
	var b strings.Builder
	b.WriteString("SELECT " + t.cols + " FROM " + t.name)
	if len(w.conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(w.conds, " AND "))
	}
	b.WriteString(" ORDER BY " + ks.sortCol + " " + dir)
	if ks.tieCol != ks.sortCol {
		b.WriteString(", " + ks.tieCol + " " + dir)
	}
	b.WriteString(" LIMIT ?")
	rows, err := x.r.QueryContext(ctx, b.String(), append(w.args, limit+1)...)
	if err != nil {
		return nil, "", wrap(op, "", err)
	}
	defer rows.Close()
	items := make([]T, 0, min(limit+1, 128))
	for rows.Next() {
		v, err := t.scan(rows)
		if err != nil {
			return nil, "", wrap(op, "", err)
		}
		items = append(items, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(op, "", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		c := key(items[limit-1])
		c.Order = p.Order
		next = c.Encode()
	}
	return items, next, nil
}

// Conversions between Go values and columns.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromDBTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

func fromMicros(n int64) time.Time { return time.UnixMicro(n).UTC() }

func dbBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func dbRaw(r json.RawMessage) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

func fromDBRaw(ns sql.NullString) json.RawMessage {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	return json.RawMessage(ns.String)
}

// dbJSON encodes v as JSON text, or NULL when empty is true.
func dbJSON(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// fromDBJSON decodes a JSON column into *v; NULL leaves *v untouched.
func fromDBJSON(ns sql.NullString, v any, col string) error {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(ns.String), v); err != nil {
		return fmt.Errorf("decode column %s: %w", col, err)
	}
	return nil
}

func dbBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scope columns: kind, target, selector.
func dbScope(s appdb.Scope) ([]any, error) {
	sel, err := dbJSON(s.Selector, len(s.Selector) == 0)
	if err != nil {
		return nil, err
	}
	return []any{string(s.Kind), s.Target, sel}, nil
}

func fromDBScope(kind, target string, sel sql.NullString) (appdb.Scope, error) {
	s := appdb.Scope{Kind: appdb.ScopeKind(kind), Target: target}
	if err := fromDBJSON(sel, &s.Selector, "scope_selector"); err != nil {
		return s, err
	}
	if len(s.Selector) == 0 {
		s.Selector = nil
	}
	return s, nil
}

func invalid(op, id string, err error) error { return wrap(op, id, err) }

func joinCols(cols []string) string { return strings.Join(cols, ", ") }

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
