package sqlitedb

import (
	"context"
	"database/sql"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type detectorRepo struct{ x repos }

var detectorTable = table[appdb.DetectorConfig]{
	name: "detector_configs",
	cols: "id, name, detector, scope_kind, scope_target, scope_selector, params, enabled, created_at, updated_at, version",
	scan: func(s scanner) (appdb.DetectorConfig, error) {
		var (
			c            appdb.DetectorConfig
			kind, target string
			sel, params  sql.NullString
			cat, uat     int64
		)
		if err := s.Scan(&c.ID, &c.Name, &c.Detector, &kind, &target, &sel, &params, &c.Enabled, &cat, &uat, &c.Version); err != nil {
			return c, err
		}
		var err error
		if c.Scope, err = fromDBScope(kind, target, sel); err != nil {
			return c, err
		}
		c.Params = fromDBRaw(params)
		c.CreatedAt, c.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return c, nil
	},
}

var detectorMutable = []string{"name", "detector", "scope_kind", "scope_target", "scope_selector", "params", "enabled"}

func detectorArgs(c appdb.DetectorConfig) ([]any, error) {
	scope, err := dbScope(c.Scope)
	if err != nil {
		return nil, err
	}
	args := append([]any{c.Name, c.Detector}, scope...)
	return append(args, dbRaw(c.Params), dbBool(c.Enabled)), nil
}

func (r detectorRepo) Create(ctx context.Context, c appdb.DetectorConfig) (appdb.DetectorConfig, error) {
	const op = "create detector config"
	if err := r.x.check(ctx, op, c.ID); err != nil {
		return appdb.DetectorConfig{}, err
	}
	now := r.x.now()
	if c.ID == "" {
		c.ID = appdb.NewID(now)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return appdb.DetectorConfig{}, invalid(op, c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.Version = now, now, 1
	args, err := detectorArgs(c)
	if err != nil {
		return appdb.DetectorConfig{}, wrap(op, c.ID, err)
	}
	cols := append(append([]string{"id"}, detectorMutable...), "created_at", "updated_at", "version")
	args = append(append([]any{c.ID}, args...), now.UnixMicro(), now.UnixMicro(), c.Version)
	if err := detectorTable.insert(ctx, r.x.w, op, c.ID, cols, args); err != nil {
		return appdb.DetectorConfig{}, err
	}
	return c, nil
}

func (r detectorRepo) Get(ctx context.Context, id string) (appdb.DetectorConfig, error) {
	return detectorTable.get(ctx, r.x, "get detector config", id, "id = ?", id)
}

func (r detectorRepo) Update(ctx context.Context, c appdb.DetectorConfig) (appdb.DetectorConfig, error) {
	const op = "update detector config"
	if err := r.x.check(ctx, op, c.ID); err != nil {
		return appdb.DetectorConfig{}, err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return appdb.DetectorConfig{}, invalid(op, c.ID, err)
	}
	args, err := detectorArgs(c)
	if err != nil {
		return appdb.DetectorConfig{}, wrap(op, c.ID, err)
	}
	return detectorTable.update(ctx, r.x.w, op, c.ID, detectorMutable, args, c.Version, r.x.now(), "id = ?", c.ID)
}

func (r detectorRepo) Delete(ctx context.Context, id string) error {
	return detectorTable.remove(ctx, r.x, "delete detector config", id, "id = ?", id)
}

func (r detectorRepo) Find(ctx context.Context, f appdb.DetectorConfigFilter) ([]appdb.DetectorConfig, string, error) {
	var w where
	w.eq("detector", f.Detector)
	w.eq("scope_kind", string(f.ScopeKind))
	w.eq("scope_target", f.Target)
	if f.Enabled != nil {
		w.add("enabled = ?", dbBool(*f.Enabled))
	}
	return find(ctx, r.x, "find detector configs", detectorTable, w, keyset{sortCol: "created_at", tieCol: "id"}, f.Page,
		func(c appdb.DetectorConfig) appdb.Cursor { return appdb.Cursor{Int: c.CreatedAt.UnixMicro(), ID: c.ID} })
}
