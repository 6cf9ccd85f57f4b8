package sqlitedb

import (
	"context"
	"database/sql"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type maintenanceRepo struct{ x repos }

var maintenanceTable = table[appdb.MaintenanceWindow]{
	name: "maintenance_windows",
	cols: "id, scope_kind, scope_target, scope_selector, start_at, end_at, reason, created_by, created_at, updated_at, version",
	scan: func(s scanner) (appdb.MaintenanceWindow, error) {
		var (
			m                    appdb.MaintenanceWindow
			kind, target         string
			sel                  sql.NullString
			start, end, cat, uat int64
		)
		if err := s.Scan(&m.ID, &kind, &target, &sel, &start, &end, &m.Reason, &m.CreatedBy, &cat, &uat, &m.Version); err != nil {
			return m, err
		}
		var err error
		if m.Scope, err = fromDBScope(kind, target, sel); err != nil {
			return m, err
		}
		m.Start, m.End = fromMicros(start), fromMicros(end)
		m.CreatedAt, m.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return m, nil
	},
}

var maintenanceMutable = []string{"scope_kind", "scope_target", "scope_selector", "start_at", "end_at", "reason", "created_by"}

func maintenanceArgs(m appdb.MaintenanceWindow) ([]any, error) {
	scope, err := dbScope(m.Scope)
	if err != nil {
		return nil, err
	}
	return append(scope, m.Start.UnixMicro(), m.End.UnixMicro(), m.Reason, m.CreatedBy), nil
}

func (r maintenanceRepo) Create(ctx context.Context, m appdb.MaintenanceWindow) (appdb.MaintenanceWindow, error) {
	const op = "create maintenance window"
	if err := r.x.check(ctx, op, m.ID); err != nil {
		return appdb.MaintenanceWindow{}, err
	}
	now := r.x.now()
	if m.ID == "" {
		m.ID = appdb.NewID(now)
	}
	m.Normalize()
	if err := m.Validate(); err != nil {
		return appdb.MaintenanceWindow{}, invalid(op, m.ID, err)
	}
	m.CreatedAt, m.UpdatedAt, m.Version = now, now, 1
	args, err := maintenanceArgs(m)
	if err != nil {
		return appdb.MaintenanceWindow{}, wrap(op, m.ID, err)
	}
	cols := append(append([]string{"id"}, maintenanceMutable...), "created_at", "updated_at", "version")
	args = append(append([]any{m.ID}, args...), now.UnixMicro(), now.UnixMicro(), m.Version)
	if err := maintenanceTable.insert(ctx, r.x.w, op, m.ID, cols, args); err != nil {
		return appdb.MaintenanceWindow{}, err
	}
	return m, nil
}

func (r maintenanceRepo) Get(ctx context.Context, id string) (appdb.MaintenanceWindow, error) {
	return maintenanceTable.get(ctx, r.x, "get maintenance window", id, "id = ?", id)
}

func (r maintenanceRepo) Update(ctx context.Context, m appdb.MaintenanceWindow) (appdb.MaintenanceWindow, error) {
	const op = "update maintenance window"
	if err := r.x.check(ctx, op, m.ID); err != nil {
		return appdb.MaintenanceWindow{}, err
	}
	m.Normalize()
	if err := m.Validate(); err != nil {
		return appdb.MaintenanceWindow{}, invalid(op, m.ID, err)
	}
	args, err := maintenanceArgs(m)
	if err != nil {
		return appdb.MaintenanceWindow{}, wrap(op, m.ID, err)
	}
	return maintenanceTable.update(ctx, r.x.w, op, m.ID, maintenanceMutable, args, m.Version, r.x.now(), "id = ?", m.ID)
}

func (r maintenanceRepo) Delete(ctx context.Context, id string) error {
	return maintenanceTable.remove(ctx, r.x, "delete maintenance window", id, "id = ?", id)
}

func (r maintenanceRepo) Find(ctx context.Context, f appdb.MaintenanceFilter) ([]appdb.MaintenanceWindow, string, error) {
	const op = "find maintenance windows"
	if err := f.Overlaps.Validate("filter.overlaps"); err != nil {
		return nil, "", invalid(op, "", err)
	}
	var w where
	w.eq("scope_kind", string(f.ScopeKind))
	w.eq("scope_target", f.Target)
	if !f.ActiveAt.IsZero() {
		t := f.ActiveAt.UnixMicro()
		w.add("start_at <= ? AND end_at > ?", t, t)
	}
	if !f.Overlaps.To.IsZero() {
		w.add("start_at < ?", f.Overlaps.To.UnixMicro())
	}
	if !f.Overlaps.From.IsZero() {
		w.add("end_at > ?", f.Overlaps.From.UnixMicro())
	}
	return find(ctx, r.x, op, maintenanceTable, w, keyset{sortCol: "start_at", tieCol: "id"}, f.Page,
		func(m appdb.MaintenanceWindow) appdb.Cursor { return appdb.Cursor{Int: m.Start.UnixMicro(), ID: m.ID} })
}
