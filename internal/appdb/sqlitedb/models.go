package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type modelRepo struct{ x repos }

var modelTable = table[appdb.ModelMeta]{
	name: "model_meta",
	cols: "name, model_version, detector, scope_kind, scope_target, scope_selector, stage, checksum, artifact_key, training, created_at, updated_at, version",
	scan: func(s scanner) (appdb.ModelMeta, error) {
		var (
			m             appdb.ModelMeta
			kind, target  string
			stage         string
			sel, training sql.NullString
			cat, uat      int64
		)
		if err := s.Scan(&m.Name, &m.ModelVersion, &m.Detector, &kind, &target, &sel, &stage, &m.Checksum, &m.ArtifactKey,
			&training, &cat, &uat, &m.Version); err != nil {
			return m, err
		}
		var err error
		if m.Scope, err = fromDBScope(kind, target, sel); err != nil {
			return m, err
		}
		m.Stage = appdb.ModelStage(stage)
		m.Training = fromDBRaw(training)
		m.CreatedAt, m.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return m, nil
	},
}

var modelMutable = []string{"detector", "scope_kind", "scope_target", "scope_selector", "stage", "checksum", "artifact_key", "training"}

func modelArgs(m appdb.ModelMeta) ([]any, error) {
	scope, err := dbScope(m.Scope)
	if err != nil {
		return nil, err
	}
	args := append([]any{m.Detector}, scope...)
	return append(args, string(m.Stage), m.Checksum, m.ArtifactKey, dbRaw(m.Training)), nil
}

func modelID(name string, version int) string { return name + "@" + strconv.Itoa(version) }

func (r modelRepo) Create(ctx context.Context, m appdb.ModelMeta) (appdb.ModelMeta, error) {
	const op = "create model"
	id := modelID(m.Name, m.ModelVersion)
	if err := r.x.check(ctx, op, id); err != nil {
		return appdb.ModelMeta{}, err
	}
	m.Normalize()
	if err := m.Validate(); err != nil {
		return appdb.ModelMeta{}, invalid(op, id, err)
	}
	now := r.x.now()
	m.CreatedAt, m.UpdatedAt, m.Version = now, now, 1
	args, err := modelArgs(m)
	if err != nil {
		return appdb.ModelMeta{}, wrap(op, id, err)
	}
	cols := "name, model_version, " + joinCols(modelMutable) + ", created_at, updated_at, version"
	marks := "?, ?, " + placeholders(len(modelMutable)) + ", ?, ?, ?"
	all := append(append([]any{m.Name}, args...), now.UnixMicro(), now.UnixMicro(), m.Version)
	if m.ModelVersion == 0 {
		// One statement, so the version is assigned atomically.
		all = append(all, m.Name)
		err = r.x.w.QueryRowContext(ctx, "INSERT INTO model_meta ("+cols+") SELECT "+
			"?, COALESCE(MAX(model_version), 0) + 1, "+placeholders(len(modelMutable))+", ?, ?, ? "+
			"FROM model_meta WHERE name = ? RETURNING model_version", all...).Scan(&m.ModelVersion)
		if err != nil {
			return appdb.ModelMeta{}, wrap(op, id, err)
		}
		return m, nil
	}
	all = append([]any{all[0], m.ModelVersion}, all[1:]...)
	if _, err := r.x.w.ExecContext(ctx, "INSERT INTO model_meta ("+cols+") VALUES ("+marks+")", all...); err != nil {
		return appdb.ModelMeta{}, wrap(op, id, err)
	}
	return m, nil
}

func (r modelRepo) Get(ctx context.Context, name string, version int) (appdb.ModelMeta, error) {
	return modelTable.get(ctx, r.x, "get model", modelID(name, version), "name = ? AND model_version = ?", name, version)
}

func (r modelRepo) Update(ctx context.Context, m appdb.ModelMeta) (appdb.ModelMeta, error) {
	const op = "update model"
	id := modelID(m.Name, m.ModelVersion)
	if err := r.x.check(ctx, op, id); err != nil {
		return appdb.ModelMeta{}, err
	}
	m.Normalize()
	if err := m.Validate(); err != nil {
		return appdb.ModelMeta{}, invalid(op, id, err)
	}
	args, err := modelArgs(m)
	if err != nil {
		return appdb.ModelMeta{}, wrap(op, id, err)
	}
	return modelTable.update(ctx, r.x.w, op, id, modelMutable, args, m.Version, r.x.now(),
		"name = ? AND model_version = ?", m.Name, m.ModelVersion)
}

func (r modelRepo) Delete(ctx context.Context, name string, version int) error {
	return modelTable.remove(ctx, r.x, "delete model", modelID(name, version), "name = ? AND model_version = ?", name, version)
}

func (r modelRepo) Find(ctx context.Context, f appdb.ModelMetaFilter) ([]appdb.ModelMeta, string, error) {
	var w where
	w.eq("name", f.Name)
	w.eq("detector", f.Detector)
	w.eq("stage", string(f.Stage))
	return find(ctx, r.x, "find models", modelTable, w, keyset{sortCol: "model_version", tieCol: "name"}, f.Page,
		func(m appdb.ModelMeta) appdb.Cursor { return appdb.Cursor{Int: int64(m.ModelVersion), ID: m.Name} })
}

func (r modelRepo) Promote(ctx context.Context, name string, version int) (appdb.ModelMeta, error) {
	const op = "promote model"
	id := modelID(name, version)
	if err := r.x.check(ctx, op, id); err != nil {
		return appdb.ModelMeta{}, err
	}
	now := r.x.now().UnixMicro()
	var out appdb.ModelMeta
	err := r.x.atomically(ctx, op, id, func(q querier) error {
		cur, err := modelTable.scan(q.QueryRowContext(ctx, "SELECT "+modelTable.cols+" FROM model_meta WHERE name = ? AND model_version = ?", name, version))
		if err != nil {
			return wrap(op, id, err)
		}
		if cur.Stage == appdb.StageActive {
			out = cur
			return nil
		}
		if _, err := q.ExecContext(ctx, "UPDATE model_meta SET stage = ?, updated_at = ?, version = version + 1 "+
			"WHERE name = ? AND stage = ? AND model_version <> ?",
			string(appdb.StageArchived), now, name, string(appdb.StageActive), version); err != nil {
			return wrap(op, id, fmt.Errorf("archive previous: %w", err))
		}
		out, err = modelTable.scan(q.QueryRowContext(ctx, "UPDATE model_meta SET stage = ?, updated_at = ?, version = version + 1 "+
			"WHERE name = ? AND model_version = ? RETURNING "+modelTable.cols, string(appdb.StageActive), now, name, version))
		if errors.Is(err, sql.ErrNoRows) {
			err = appdb.ErrNotFound
		}
		return wrap(op, id, err)
	})
	return out, err
}
