package sqlitedb

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type outboxRepo struct{ x repos }

var outboxTable = table[appdb.OutboxMessage]{
	name: "outbox",
	cols: "id, topic, msg_key, payload, attempts, next_attempt_at, delivered_at, last_error, created_at, updated_at, version",
	scan: func(s scanner) (appdb.OutboxMessage, error) {
		var (
			m              appdb.OutboxMessage
			next, cat, uat int64
			delivered      sql.NullInt64
		)
		if err := s.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.Attempts, &next, &delivered, &m.LastError, &cat, &uat, &m.Version); err != nil {
			return m, err
		}
		m.Payload = nilIfEmpty(m.Payload)
		m.NextAttemptAt, m.DeliveredAt = fromMicros(next), fromDBTime(delivered)
		m.CreatedAt, m.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return m, nil
	},
}

var outboxMutable = []string{"topic", "msg_key", "payload", "attempts", "next_attempt_at", "delivered_at", "last_error"}

func outboxArgs(m appdb.OutboxMessage) []any {
	return []any{m.Topic, m.Key, dbBytes(m.Payload), m.Attempts, m.NextAttemptAt.UnixMicro(), dbTime(m.DeliveredAt), m.LastError}
}

func (r outboxRepo) Create(ctx context.Context, m appdb.OutboxMessage) (appdb.OutboxMessage, error) {
	const op = "create outbox message"
	if err := r.x.check(ctx, op, m.ID); err != nil {
		return appdb.OutboxMessage{}, err
	}
	now := r.x.now()
	if m.ID == "" {
		m.ID = appdb.NewID(now)
	}
	m.Normalize()
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = now
	}
	if err := m.Validate(); err != nil {
		return appdb.OutboxMessage{}, invalid(op, m.ID, err)
	}
	m.CreatedAt, m.UpdatedAt, m.Version = now, now, 1
	cols := append(append([]string{"id"}, outboxMutable...), "created_at", "updated_at", "version")
	args := append(append([]any{m.ID}, outboxArgs(m)...), now.UnixMicro(), now.UnixMicro(), m.Version)
	if err := outboxTable.insert(ctx, r.x.w, op, m.ID, cols, args); err != nil {
		return appdb.OutboxMessage{}, err
	}
	return m, nil
}

func (r outboxRepo) Get(ctx context.Context, id string) (appdb.OutboxMessage, error) {
	return outboxTable.get(ctx, r.x, "get outbox message", id, "id = ?", id)
}

func (r outboxRepo) Update(ctx context.Context, m appdb.OutboxMessage) (appdb.OutboxMessage, error) {
	const op = "update outbox message"
	if err := r.x.check(ctx, op, m.ID); err != nil {
		return appdb.OutboxMessage{}, err
	}
	m.Normalize()
	if m.NextAttemptAt.IsZero() {
		return appdb.OutboxMessage{}, invalid(op, m.ID, appdb.Invalid("outbox.next_attempt_at", "zero"))
	}
	if err := m.Validate(); err != nil {
		return appdb.OutboxMessage{}, invalid(op, m.ID, err)
	}
	return outboxTable.update(ctx, r.x.w, op, m.ID, outboxMutable, outboxArgs(m), m.Version, r.x.now(), "id = ?", m.ID)
}

func (r outboxRepo) Delete(ctx context.Context, id string) error {
	return outboxTable.remove(ctx, r.x, "delete outbox message", id, "id = ?", id)
}

func (r outboxRepo) Find(ctx context.Context, f appdb.OutboxFilter) ([]appdb.OutboxMessage, string, error) {
	const op = "find outbox messages"
	if err := f.Created.Validate("filter.created"); err != nil {
		return nil, "", invalid(op, "", err)
	}
	var w where
	w.eq("topic", f.Topic)
	w.eq("msg_key", f.Key)
	if f.Delivered != nil {
		if *f.Delivered {
			w.add("delivered_at IS NOT NULL")
		} else {
			w.add("delivered_at IS NULL")
		}
	}
	w.timeRange("created_at", f.Created)
	return find(ctx, r.x, op, outboxTable, w, keyset{sortCol: "created_at", tieCol: "id"}, f.Page,
		func(m appdb.OutboxMessage) appdb.Cursor { return appdb.Cursor{Int: m.CreatedAt.UnixMicro(), ID: m.ID} })
}

func (r outboxRepo) Claim(ctx context.Context, limit int, lease time.Duration) ([]appdb.OutboxMessage, error) {
	const op = "claim outbox messages"
	if err := r.x.check(ctx, op, ""); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > appdb.MaxLimit {
		return nil, invalid(op, "", appdb.Invalid("limit", "outside [1, 1000]"))
	}
	if lease <= 0 {
		return nil, invalid(op, "", appdb.Invalid("lease", "not positive"))
	}
	now := r.x.now()
	// One statement: SQLite runs it under the write lock, so concurrent
	// claimers serialise and never take the same message.
	rows, err := r.x.w.QueryContext(ctx, "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?, version = version + 1 "+
		"WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY created_at, id LIMIT ?) "+
		"RETURNING "+outboxTable.cols,
		now.Add(lease).UnixMicro(), now.UnixMicro(), now.UnixMicro(), limit)
	if err != nil {
		return nil, wrap(op, "", err)
	}
	defer rows.Close()
	var out []appdb.OutboxMessage
	for rows.Next() {
		m, err := outboxTable.scan(rows)
		if err != nil {
			return nil, wrap(op, "", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, "", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (r outboxRepo) MarkDelivered(ctx context.Context, id string) error {
	const op = "mark outbox message delivered"
	if err := r.x.check(ctx, op, id); err != nil {
		return err
	}
	now := r.x.now().UnixMicro()
	res, err := r.x.w.ExecContext(ctx, "UPDATE outbox SET delivered_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND delivered_at IS NULL",
		now, now, id)
	if err != nil {
		return wrap(op, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(op, id, err)
	} else if n > 0 {
		return nil
	}
	var one int
	return wrap(op, id, r.x.w.QueryRowContext(ctx, "SELECT 1 FROM outbox WHERE id = ?", id).Scan(&one))
}

func (r outboxRepo) DeleteDelivered(ctx context.Context, before time.Time) (int, error) {
	const op = "delete delivered outbox messages"
	if err := r.x.check(ctx, op, ""); err != nil {
		return 0, err
	}
	res, err := r.x.w.ExecContext(ctx, "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?", before.UnixMicro())
	if err != nil {
		return 0, wrap(op, "", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(op, "", err)
}
