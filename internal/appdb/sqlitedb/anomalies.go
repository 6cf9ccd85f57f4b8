package sqlitedb

import (
	"context"
	"database/sql"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type anomalyRepo struct{ x repos }

// dbComment is the JSON form of a comment in anomalies.comments.
type dbComment struct {
	Author string `json:"author,omitempty"`
	Text   string `json:"text"`
	AtUS   int64  `json:"at_us,omitempty"`
}

var anomalyTable = table[appdb.Anomaly]{
	name: "anomalies",
	cols: "id, series_key, device, start_at, end_at, peak_score, severity, detectors, sensors, model_version, state, assignee, comments, created_at, updated_at, version",
	scan: func(s scanner) (appdb.Anomaly, error) {
		var (
			a                            appdb.Anomaly
			start, cat, uat              int64
			end                          sql.NullInt64
			severity, state              string
			detectors, sensors, comments sql.NullString
		)
		if err := s.Scan(&a.ID, &a.SeriesKey, &a.Device, &start, &end, &a.PeakScore, &severity, &detectors, &sensors,
			&a.ModelVersion, &state, &a.Assignee, &comments, &cat, &uat, &a.Version); err != nil {
			return a, err
		}
		a.Start, a.End = fromMicros(start), fromDBTime(end)
		a.Severity, a.State = appdb.Severity(severity), appdb.AnomalyState(state)
		if err := fromDBJSON(detectors, &a.Detectors, "detectors"); err != nil {
			return a, err
		}
		if err := fromDBJSON(sensors, &a.Sensors, "sensors"); err != nil {
			return a, err
		}
		var cs []dbComment
		if err := fromDBJSON(comments, &cs, "comments"); err != nil {
			return a, err
		}
		for _, c := range cs {
			com := appdb.Comment{Author: c.Author, Text: c.Text}
			if c.AtUS != 0 {
				com.At = fromMicros(c.AtUS)
			}
			a.Comments = append(a.Comments, com)
		}
		if len(a.Detectors) == 0 {
			a.Detectors = nil
		}
		if len(a.Sensors) == 0 {
			a.Sensors = nil
		}
		a.CreatedAt, a.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return a, nil
	},
}

var anomalyMutable = []string{"series_key", "device", "start_at", "end_at", "peak_score", "severity", "detectors", "sensors",
	"model_version", "state", "assignee", "comments"}

func anomalyArgs(a appdb.Anomaly) ([]any, error) {
	detectors, err := dbJSON(a.Detectors, len(a.Detectors) == 0)
	if err != nil {
		return nil, err
	}
	sensors, err := dbJSON(a.Sensors, len(a.Sensors) == 0)
	if err != nil {
		return nil, err
	}
	cs := make([]dbComment, len(a.Comments))
	for i, c := range a.Comments {
		cs[i] = dbComment{Author: c.Author, Text: c.Text}
		if !c.At.IsZero() {
			cs[i].AtUS = c.At.UnixMicro()
		}
	}
	comments, err := dbJSON(cs, len(cs) == 0)
	if err != nil {
		return nil, err
	}
	return []any{a.SeriesKey, a.Device, a.Start.UnixMicro(), dbTime(a.End), a.PeakScore, string(a.Severity),
		detectors, sensors, a.ModelVersion, string(a.State), a.Assignee, comments}, nil
}

func (r anomalyRepo) Create(ctx context.Context, a appdb.Anomaly) (appdb.Anomaly, error) {
	const op = "create anomaly"
	if err := r.x.check(ctx, op, a.ID); err != nil {
		return appdb.Anomaly{}, err
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return appdb.Anomaly{}, invalid(op, a.ID, err)
	}
	now := r.x.now()
	a.CreatedAt, a.UpdatedAt, a.Version = now, now, 1
	args, err := anomalyArgs(a)
	if err != nil {
		return appdb.Anomaly{}, wrap(op, a.ID, err)
	}
	cols := append(append([]string{"id"}, anomalyMutable...), "created_at", "updated_at", "version")
	args = append(append([]any{a.ID}, args...), now.UnixMicro(), now.UnixMicro(), a.Version)
	if err := anomalyTable.insert(ctx, r.x.w, op, a.ID, cols, args); err != nil {
		return appdb.Anomaly{}, err
	}
	return a, nil
}

func (r anomalyRepo) Get(ctx context.Context, id string) (appdb.Anomaly, error) {
	return anomalyTable.get(ctx, r.x, "get anomaly", id, "id = ?", id)
}

func (r anomalyRepo) Update(ctx context.Context, a appdb.Anomaly) (appdb.Anomaly, error) {
	const op = "update anomaly"
	if err := r.x.check(ctx, op, a.ID); err != nil {
		return appdb.Anomaly{}, err
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return appdb.Anomaly{}, invalid(op, a.ID, err)
	}
	args, err := anomalyArgs(a)
	if err != nil {
		return appdb.Anomaly{}, wrap(op, a.ID, err)
	}
	return anomalyTable.update(ctx, r.x.w, op, a.ID, anomalyMutable, args, a.Version, r.x.now(), "id = ?", a.ID)
}

func (r anomalyRepo) Delete(ctx context.Context, id string) error {
	return anomalyTable.remove(ctx, r.x, "delete anomaly", id, "id = ?", id)
}

func (r anomalyRepo) Find(ctx context.Context, f appdb.AnomalyFilter) ([]appdb.Anomaly, string, error) {
	const op = "find anomalies"
	if err := f.Start.Validate("filter.start"); err != nil {
		return nil, "", invalid(op, "", err)
	}
	var w where
	w.eq("device", f.Device)
	w.eq("series_key", f.SeriesKey)
	w.eq("state", string(f.State))
	w.eq("severity", string(f.Severity))
	if f.Ongoing != nil {
		if *f.Ongoing {
			w.add("end_at IS NULL")
		} else {
			w.add("end_at IS NOT NULL")
		}
	}
	w.timeRange("start_at", f.Start)
	return find(ctx, r.x, op, anomalyTable, w, keyset{sortCol: "start_at", tieCol: "id"}, f.Page,
		func(a appdb.Anomaly) appdb.Cursor { return appdb.Cursor{Int: a.Start.UnixMicro(), ID: a.ID} })
}

func (r anomalyRepo) AddComment(ctx context.Context, id string, c appdb.Comment) (appdb.Anomaly, error) {
	const op = "comment anomaly"
	if err := r.x.check(ctx, op, id); err != nil {
		return appdb.Anomaly{}, err
	}
	if c.Text == "" {
		return appdb.Anomaly{}, invalid(op, id, appdb.Invalid("comment.text", "empty"))
	}
	now := r.x.now()
	if c.At.IsZero() {
		c.At = now
	}
	var out appdb.Anomaly
	err := r.x.atomically(ctx, op, id, func(q querier) error {
		a, err := anomalyTable.scan(q.QueryRowContext(ctx, "SELECT "+anomalyTable.cols+" FROM anomalies WHERE id = ?", id))
		if err != nil {
			return wrap(op, id, err)
		}
		a.Comments = append(a.Comments, c)
		a.Normalize()
		args, err := anomalyArgs(a)
		if err != nil {
			return wrap(op, id, err)
		}
		out, err = anomalyTable.update(ctx, q, op, id, anomalyMutable, args, a.Version, now, "id = ?", id)
		return err
	})
	return out, err
}
