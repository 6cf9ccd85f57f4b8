package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

type deviceRepo struct{ x repos }

var deviceTable = table[appdb.Device]{
	name: "devices",
	cols: "id, name, labels, first_seen, last_seen, report_interval_us, created_at, updated_at, version",
	scan: func(s scanner) (appdb.Device, error) {
		var (
			d                  appdb.Device
			labels             sql.NullString
			first, last        sql.NullInt64
			interval, cat, uat int64
		)
		if err := s.Scan(&d.ID, &d.Name, &labels, &first, &last, &interval, &cat, &uat, &d.Version); err != nil {
			return d, err
		}
		if err := fromDBJSON(labels, &d.Labels, "labels"); err != nil {
			return d, err
		}
		if len(d.Labels) == 0 {
			d.Labels = nil
		}
		d.FirstSeen, d.LastSeen = fromDBTime(first), fromDBTime(last)
		d.ReportInterval = time.Duration(interval) * time.Microsecond
		d.CreatedAt, d.UpdatedAt = fromMicros(cat), fromMicros(uat)
		return d, nil
	},
}

var deviceMutable = []string{"name", "labels", "first_seen", "last_seen", "report_interval_us"}

func deviceArgs(d appdb.Device) ([]any, error) {
	labels, err := dbJSON(d.Labels, len(d.Labels) == 0)
	if err != nil {
		return nil, err
	}
	return []any{d.Name, labels, dbTime(d.FirstSeen), dbTime(d.LastSeen), d.ReportInterval.Microseconds()}, nil
}

func (r deviceRepo) Create(ctx context.Context, d appdb.Device) (appdb.Device, error) {
	const op = "create device"
	if err := r.x.check(ctx, op, d.ID); err != nil {
		return appdb.Device{}, err
	}
	d.Normalize()
	if err := d.Validate(); err != nil {
		return appdb.Device{}, invalid(op, d.ID, err)
	}
	now := r.x.now()
	d.CreatedAt, d.UpdatedAt, d.Version = now, now, 1
	args, err := deviceArgs(d)
	if err != nil {
		return appdb.Device{}, wrap(op, d.ID, err)
	}
	cols := append([]string{"id"}, deviceMutable...)
	cols = append(cols, "created_at", "updated_at", "version")
	args = append([]any{d.ID}, args...)
	args = append(args, now.UnixMicro(), now.UnixMicro(), d.Version)
	if err := deviceTable.insert(ctx, r.x.w, op, d.ID, cols, args); err != nil {
		return appdb.Device{}, err
	}
	return d, nil
}

func (r deviceRepo) Get(ctx context.Context, id string) (appdb.Device, error) {
	return deviceTable.get(ctx, r.x, "get device", id, "id = ?", id)
}

func (r deviceRepo) Update(ctx context.Context, d appdb.Device) (appdb.Device, error) {
	const op = "update device"
	if err := r.x.check(ctx, op, d.ID); err != nil {
		return appdb.Device{}, err
	}
	d.Normalize()
	if err := d.Validate(); err != nil {
		return appdb.Device{}, invalid(op, d.ID, err)
	}
	args, err := deviceArgs(d)
	if err != nil {
		return appdb.Device{}, wrap(op, d.ID, err)
	}
	return deviceTable.update(ctx, r.x.w, op, d.ID, deviceMutable, args, d.Version, r.x.now(), "id = ?", d.ID)
}

func (r deviceRepo) Delete(ctx context.Context, id string) error {
	return deviceTable.remove(ctx, r.x, "delete device", id, "id = ?", id)
}

func (r deviceRepo) Find(ctx context.Context, f appdb.DeviceFilter) ([]appdb.Device, string, error) {
	const op = "find devices"
	if err := f.LastSeen.Validate("filter.last_seen"); err != nil {
		return nil, "", invalid(op, "", err)
	}
	var w where
	w.prefix("id", f.IDPrefix)
	for k, v := range f.Labels {
		w.add("EXISTS (SELECT 1 FROM json_each(devices.labels) WHERE json_each.key = ? AND json_each.value = ?)", k, v)
	}
	w.timeRange("last_seen", f.LastSeen)
	return find(ctx, r.x, op, deviceTable, w, keyset{sortCol: "id", tieCol: "id", str: true}, f.Page,
		func(d appdb.Device) appdb.Cursor { return appdb.Cursor{ID: d.ID} })
}

func (r deviceRepo) Seen(ctx context.Context, id string, t time.Time) (appdb.Device, error) {
	const op = "device seen"
	if err := r.x.check(ctx, op, id); err != nil {
		return appdb.Device{}, err
	}
	d := appdb.Device{ID: id, FirstSeen: t, LastSeen: t}
	d.Normalize()
	if err := d.Validate(); err != nil {
		return appdb.Device{}, invalid(op, id, err)
	}
	if d.FirstSeen.IsZero() {
		return appdb.Device{}, invalid(op, id, appdb.Invalid("seen", "zero time"))
	}
	now := r.x.now().UnixMicro()
	ts := d.FirstSeen.UnixMicro()
	got, err := deviceTable.scan(r.x.w.QueryRowContext(ctx, `INSERT INTO devices
		(id, name, labels, first_seen, last_seen, report_interval_us, created_at, updated_at, version)
		VALUES (?, '', NULL, ?, ?, 0, ?, ?, 1)
		ON CONFLICT (id) DO UPDATE SET
			first_seen = CASE WHEN devices.first_seen IS NULL OR excluded.first_seen < devices.first_seen
				THEN excluded.first_seen ELSE devices.first_seen END,
			last_seen = CASE WHEN devices.last_seen IS NULL OR excluded.last_seen > devices.last_seen
				THEN excluded.last_seen ELSE devices.last_seen END,
			updated_at = excluded.updated_at,
			version = devices.version + 1
		WHERE devices.first_seen IS NULL OR devices.last_seen IS NULL
			OR excluded.first_seen < devices.first_seen OR excluded.last_seen > devices.last_seen
		RETURNING `+deviceTable.cols, id, ts, ts, now, now))
	if errors.Is(err, sql.ErrNoRows) { // nothing to change
		got, err = deviceTable.scan(r.x.w.QueryRowContext(ctx, "SELECT "+deviceTable.cols+" FROM devices WHERE id = ?", id))
	}
	if err != nil {
		return appdb.Device{}, wrap(op, id, err)
	}
	return got, nil
}
