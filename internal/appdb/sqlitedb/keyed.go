package sqlitedb

import (
	"context"
	"database/sql"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type checkpointRepo struct{ x repos }

var checkpointTable = table[appdb.Checkpoint]{
	name: "checkpoints",
	cols: "key, scored_through, state, created_at, updated_at, version",
	scan: func(s scanner) (appdb.Checkpoint, error) {
		var (
			c        appdb.Checkpoint
			scored   sql.NullInt64
			cat, uat int64
		)
		if err := s.Scan(&c.Key, &scored, &c.State, &cat, &uat, &c.Version); err != nil {
			return c, err
		}
		c.ScoredThrough = fromDBTime(scored)
		c.State = nilIfEmpty(c.State)
		c.CreatedAt, c.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return c, nil
	},
}

var checkpointMutable = []string{"scored_through", "state"}

func (r checkpointRepo) Create(ctx context.Context, c appdb.Checkpoint) (appdb.Checkpoint, error) {
	const op = "create checkpoint"
	if err := r.x.check(ctx, op, c.Key); err != nil {
		return appdb.Checkpoint{}, err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return appdb.Checkpoint{}, invalid(op, c.Key, err)
	}
	now := r.x.now()
	c.CreatedAt, c.UpdatedAt, c.Version = now, now, 1
	if err := checkpointTable.insert(ctx, r.x.w, op, c.Key,
		[]string{"key", "scored_through", "state", "created_at", "updated_at", "version"},
		[]any{c.Key, dbTime(c.ScoredThrough), dbBytes(c.State), now.UnixMicro(), now.UnixMicro(), c.Version}); err != nil {
		return appdb.Checkpoint{}, err
	}
	return c, nil
}

func (r checkpointRepo) Get(ctx context.Context, key string) (appdb.Checkpoint, error) {
	return checkpointTable.get(ctx, r.x, "get checkpoint", key, "key = ?", key)
}

func (r checkpointRepo) Update(ctx context.Context, c appdb.Checkpoint) (appdb.Checkpoint, error) {
	const op = "update checkpoint"
	if err := r.x.check(ctx, op, c.Key); err != nil {
		return appdb.Checkpoint{}, err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return appdb.Checkpoint{}, invalid(op, c.Key, err)
	}
	return checkpointTable.update(ctx, r.x.w, op, c.Key, checkpointMutable,
		[]any{dbTime(c.ScoredThrough), dbBytes(c.State)}, c.Version, r.x.now(), "key = ?", c.Key)
}

func (r checkpointRepo) Delete(ctx context.Context, key string) error {
	return checkpointTable.remove(ctx, r.x, "delete checkpoint", key, "key = ?", key)
}

func (r checkpointRepo) Find(ctx context.Context, f appdb.CheckpointFilter) ([]appdb.Checkpoint, string, error) {
	var w where
	w.prefix("key", f.KeyPrefix)
	return find(ctx, r.x, "find checkpoints", checkpointTable, w, keyset{sortCol: "key", tieCol: "key", str: true}, f.Page,
		func(c appdb.Checkpoint) appdb.Cursor { return appdb.Cursor{ID: c.Key} })
}

func (r checkpointRepo) Put(ctx context.Context, c appdb.Checkpoint) (appdb.Checkpoint, error) {
	const op = "put checkpoint"
	if err := r.x.check(ctx, op, c.Key); err != nil {
		return appdb.Checkpoint{}, err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return appdb.Checkpoint{}, invalid(op, c.Key, err)
	}
	now := r.x.now().UnixMicro()
	got, err := checkpointTable.scan(r.x.w.QueryRowContext(ctx, "INSERT INTO checkpoints "+
		"(key, scored_through, state, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, 1) "+
		"ON CONFLICT (key) DO UPDATE SET scored_through = excluded.scored_through, state = excluded.state, "+
		"updated_at = excluded.updated_at, version = checkpoints.version + 1 RETURNING "+checkpointTable.cols,
		c.Key, dbTime(c.ScoredThrough), dbBytes(c.State), now, now))
	if err != nil {
		return appdb.Checkpoint{}, wrap(op, c.Key, err)
	}
	return got, nil
}

type stateRepo struct{ x repos }

var stateTable = table[appdb.SystemState]{
	name: "system_state",
	cols: "key, value, created_at, updated_at, version",
	scan: func(s scanner) (appdb.SystemState, error) {
		var (
			v        appdb.SystemState
			cat, uat int64
		)
		if err := s.Scan(&v.Key, &v.Value, &cat, &uat, &v.Version); err != nil {
			return v, err
		}
		v.CreatedAt, v.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return v, nil
	},
}

func (r stateRepo) Create(ctx context.Context, v appdb.SystemState) (appdb.SystemState, error) {
	const op = "create system state"
	if err := r.x.check(ctx, op, v.Key); err != nil {
		return appdb.SystemState{}, err
	}
	v.Normalize()
	if err := v.Validate(); err != nil {
		return appdb.SystemState{}, invalid(op, v.Key, err)
	}
	now := r.x.now()
	v.CreatedAt, v.UpdatedAt, v.Version = now, now, 1
	if err := stateTable.insert(ctx, r.x.w, op, v.Key, []string{"key", "value", "created_at", "updated_at", "version"},
		[]any{v.Key, v.Value, now.UnixMicro(), now.UnixMicro(), v.Version}); err != nil {
		return appdb.SystemState{}, err
	}
	return v, nil
}

func (r stateRepo) Get(ctx context.Context, key string) (appdb.SystemState, error) {
	return stateTable.get(ctx, r.x, "get system state", key, "key = ?", key)
}

func (r stateRepo) Update(ctx context.Context, v appdb.SystemState) (appdb.SystemState, error) {
	const op = "update system state"
	if err := r.x.check(ctx, op, v.Key); err != nil {
		return appdb.SystemState{}, err
	}
	v.Normalize()
	if err := v.Validate(); err != nil {
		return appdb.SystemState{}, invalid(op, v.Key, err)
	}
	return stateTable.update(ctx, r.x.w, op, v.Key, []string{"value"}, []any{v.Value}, v.Version, r.x.now(), "key = ?", v.Key)
}

func (r stateRepo) Delete(ctx context.Context, key string) error {
	return stateTable.remove(ctx, r.x, "delete system state", key, "key = ?", key)
}

func (r stateRepo) Find(ctx context.Context, f appdb.SystemStateFilter) ([]appdb.SystemState, string, error) {
	var w where
	w.prefix("key", f.KeyPrefix)
	return find(ctx, r.x, "find system state", stateTable, w, keyset{sortCol: "key", tieCol: "key", str: true}, f.Page,
		func(v appdb.SystemState) appdb.Cursor { return appdb.Cursor{ID: v.Key} })
}

func (r stateRepo) Put(ctx context.Context, v appdb.SystemState) (appdb.SystemState, error) {
	const op = "put system state"
	if err := r.x.check(ctx, op, v.Key); err != nil {
		return appdb.SystemState{}, err
	}
	v.Normalize()
	if err := v.Validate(); err != nil {
		return appdb.SystemState{}, invalid(op, v.Key, err)
	}
	now := r.x.now().UnixMicro()
	got, err := stateTable.scan(r.x.w.QueryRowContext(ctx, "INSERT INTO system_state (key, value, created_at, updated_at, version) "+
		"VALUES (?, ?, ?, ?, 1) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "+
		"version = system_state.version + 1 RETURNING "+stateTable.cols, v.Key, v.Value, now, now))
	if err != nil {
		return appdb.SystemState{}, wrap(op, v.Key, err)
	}
	return got, nil
}
