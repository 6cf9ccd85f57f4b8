package appdbtest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// base is the time the samples start at: nanoseconds and a non-UTC zone, so
// that normalisation is exercised.
var base = time.Date(2026, 2, 1, 10, 0, 0, 987654321, time.FixedZone("UTC-5", -5*3600))

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func deviceCase() crudCase[appdb.Device] {
	return crudCase[appdb.Device]{
		sample: func(i int) appdb.Device {
			return appdb.Device{
				ID:             fmt.Sprintf("dev-%03d", i),
				Name:           fmt.Sprintf("Pump %d", i),
				Labels:         map[string]string{"site": "north", "model": "x1"},
				FirstSeen:      base,
				LastSeen:       base.Add(time.Hour),
				ReportInterval: 10*time.Second + 1234*time.Nanosecond,
			}
		},
		modify: func(d appdb.Device) appdb.Device {
			d.Name += " (moved)"
			d.Labels = map[string]string{"site": "south"}
			d.FirstSeen = d.FirstSeen.Add(-time.Minute)
			d.LastSeen = d.LastSeen.Add(2*time.Hour + 7)
			d.ReportInterval = 20 * time.Second
			return d
		},
		expect: func(d appdb.Device, created, updated time.Time, version int64) appdb.Device {
			d.FirstSeen, d.LastSeen = nt(d.FirstSeen), nt(d.LastSeen)
			d.ReportInterval = d.ReportInterval.Truncate(time.Microsecond)
			d.CreatedAt, d.UpdatedAt, d.Version = created, updated, version
			return d
		},
		withVersion: func(d appdb.Device, v int64) appdb.Device { d.Version = v; return d },
		create: func(ctx context.Context, r appdb.Repositories, d appdb.Device) (appdb.Device, error) {
			return r.Devices().Create(ctx, d)
		},
		get: func(ctx context.Context, r appdb.Repositories, d appdb.Device) (appdb.Device, error) {
			return r.Devices().Get(ctx, d.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, d appdb.Device) (appdb.Device, error) {
			return r.Devices().Update(ctx, d)
		},
		del: func(ctx context.Context, r appdb.Repositories, d appdb.Device) error {
			return r.Devices().Delete(ctx, d.ID)
		},
	}
}

func detectorCase() crudCase[appdb.DetectorConfig] {
	return crudCase[appdb.DetectorConfig]{
		sample: func(i int) appdb.DetectorConfig {
			return appdb.DetectorConfig{
				ID:       fmt.Sprintf("det-%03d", i),
				Name:     fmt.Sprintf("MAD on north %d", i),
				Detector: "mad",
				Scope:    appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"site": "north", "kind": "pump"}},
				Params:   json.RawMessage(`{"window": 60, "threshold": 3.5, "fields": ["temp", "rpm"]}`),
				Enabled:  true,
			}
		},
		modify: func(c appdb.DetectorConfig) appdb.DetectorConfig {
			c.Name += " v2"
			c.Detector = "seasonal"
			c.Scope = appdb.Scope{Kind: appdb.ScopeDevice, Target: "dev-001"}
			c.Params = json.RawMessage(`{"period":"24h"}`)
			c.Enabled = false
			return c
		},
		expect: func(c appdb.DetectorConfig, created, updated time.Time, version int64) appdb.DetectorConfig {
			c.CreatedAt, c.UpdatedAt, c.Version = created, updated, version
			return c
		},
		withVersion: func(c appdb.DetectorConfig, v int64) appdb.DetectorConfig { c.Version = v; return c },
		clearID:     func(c appdb.DetectorConfig) appdb.DetectorConfig { c.ID = ""; return c },
		id:          func(c appdb.DetectorConfig) string { return c.ID },
		create: func(ctx context.Context, r appdb.Repositories, c appdb.DetectorConfig) (appdb.DetectorConfig, error) {
			return r.Detectors().Create(ctx, c)
		},
		get: func(ctx context.Context, r appdb.Repositories, c appdb.DetectorConfig) (appdb.DetectorConfig, error) {
			return r.Detectors().Get(ctx, c.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, c appdb.DetectorConfig) (appdb.DetectorConfig, error) {
			return r.Detectors().Update(ctx, c)
		},
		del: func(ctx context.Context, r appdb.Repositories, c appdb.DetectorConfig) error {
			return r.Detectors().Delete(ctx, c.ID)
		},
	}
}

func sampleAnomaly(i int) appdb.Anomaly {
	return appdb.Anomaly{
		ID:           fmt.Sprintf("anom-%05d", i),
		SeriesKey:    fmt.Sprintf("machine,device=dev-%03d temp", i%7),
		Device:       fmt.Sprintf("dev-%03d", i%7),
		Start:        base.Add(time.Duration(i) * time.Minute),
		PeakScore:    0.875,
		Severity:     appdb.SeverityWarning,
		Detectors:    []string{"mad", "seasonal"},
		Sensors:      []string{"temp"},
		ModelVersion: "seasonal@3",
		State:        appdb.StateOpen,
		Comments:     []appdb.Comment{{Author: "detector", Text: "opened", At: base.Add(time.Second)}},
	}
}

func anomalyCase() crudCase[appdb.Anomaly] {
	return crudCase[appdb.Anomaly]{
		sample: sampleAnomaly,
		modify: func(a appdb.Anomaly) appdb.Anomaly {
			a.End = a.Start.Add(17*time.Minute + 3)
			a.PeakScore = 0.99
			a.Severity = appdb.SeverityCritical
			a.Detectors = append(a.Detectors, "level-shift")
			a.Sensors = []string{"temp", "rpm"}
			a.ModelVersion = "seasonal@4"
			a.State = appdb.StateAcknowledged
			a.Assignee = "alice"
			a.Comments = append(a.Comments, appdb.Comment{Author: "alice", Text: "on it", At: base.Add(time.Hour + 5)})
			return a
		},
		expect: func(a appdb.Anomaly, created, updated time.Time, version int64) appdb.Anomaly {
			a.Start, a.End = nt(a.Start), nt(a.End)
			cs := make([]appdb.Comment, len(a.Comments))
			for i, c := range a.Comments {
				c.At = nt(c.At)
				cs[i] = c
			}
			a.Comments = cs
			a.CreatedAt, a.UpdatedAt, a.Version = created, updated, version
			return a
		},
		withVersion: func(a appdb.Anomaly, v int64) appdb.Anomaly { a.Version = v; return a },
		create: func(ctx context.Context, r appdb.Repositories, a appdb.Anomaly) (appdb.Anomaly, error) {
			return r.Anomalies().Create(ctx, a)
		},
		get: func(ctx context.Context, r appdb.Repositories, a appdb.Anomaly) (appdb.Anomaly, error) {
			return r.Anomalies().Get(ctx, a.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, a appdb.Anomaly) (appdb.Anomaly, error) {
			return r.Anomalies().Update(ctx, a)
		},
		del: func(ctx context.Context, r appdb.Repositories, a appdb.Anomaly) error {
			return r.Anomalies().Delete(ctx, a.ID)
		},
	}
}

func maintenanceCase() crudCase[appdb.MaintenanceWindow] {
	return crudCase[appdb.MaintenanceWindow]{
		sample: func(i int) appdb.MaintenanceWindow {
			return appdb.MaintenanceWindow{
				ID:        fmt.Sprintf("mw-%03d", i),
				Scope:     appdb.Scope{Kind: appdb.ScopeDevice, Target: fmt.Sprintf("dev-%03d", i)},
				Start:     base.Add(time.Duration(i) * time.Hour),
				End:       base.Add(time.Duration(i)*time.Hour + 90*time.Minute),
				Reason:    "bearing replacement",
				CreatedBy: "bob",
			}
		},
		modify: func(m appdb.MaintenanceWindow) appdb.MaintenanceWindow {
			m.Scope = appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"site": "north"}}
			m.Start = m.Start.Add(30 * time.Minute)
			m.End = m.End.Add(time.Hour + 11)
			m.Reason = "extended"
			m.CreatedBy = "carol"
			return m
		},
		expect: func(m appdb.MaintenanceWindow, created, updated time.Time, version int64) appdb.MaintenanceWindow {
			m.Start, m.End = nt(m.Start), nt(m.End)
			m.CreatedAt, m.UpdatedAt, m.Version = created, updated, version
			return m
		},
		withVersion: func(m appdb.MaintenanceWindow, v int64) appdb.MaintenanceWindow { m.Version = v; return m },
		clearID:     func(m appdb.MaintenanceWindow) appdb.MaintenanceWindow { m.ID = ""; return m },
		id:          func(m appdb.MaintenanceWindow) string { return m.ID },
		create: func(ctx context.Context, r appdb.Repositories, m appdb.MaintenanceWindow) (appdb.MaintenanceWindow, error) {
			return r.Maintenance().Create(ctx, m)
		},
		get: func(ctx context.Context, r appdb.Repositories, m appdb.MaintenanceWindow) (appdb.MaintenanceWindow, error) {
			return r.Maintenance().Get(ctx, m.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, m appdb.MaintenanceWindow) (appdb.MaintenanceWindow, error) {
			return r.Maintenance().Update(ctx, m)
		},
		del: func(ctx context.Context, r appdb.Repositories, m appdb.MaintenanceWindow) error {
			return r.Maintenance().Delete(ctx, m.ID)
		},
	}
}

func modelCase() crudCase[appdb.ModelMeta] {
	return crudCase[appdb.ModelMeta]{
		sample: func(i int) appdb.ModelMeta {
			return appdb.ModelMeta{
				Name:         fmt.Sprintf("seasonal/device=dev-%03d", i),
				ModelVersion: 1,
				Detector:     "seasonal",
				Scope:        appdb.Scope{Kind: appdb.ScopeDevice, Target: fmt.Sprintf("dev-%03d", i)},
				Stage:        appdb.StageCandidate,
				Checksum:     "sha256:0123abcd",
				ArtifactKey:  fmt.Sprintf("models/seasonal/dev-%03d/1.bin", i),
				Training:     json.RawMessage(`{"from":"2026-01-01T00:00:00Z","to":"2026-02-01T00:00:00Z","points":123456}`),
			}
		},
		modify: func(m appdb.ModelMeta) appdb.ModelMeta {
			m.Detector = "seasonal-v2"
			m.Scope = appdb.Scope{Kind: appdb.ScopeSeries, Target: "machine,device=dev-000 temp"}
			m.Stage = appdb.StageArchived
			m.Checksum = "sha256:ffff"
			m.ArtifactKey += ".old"
			m.Training = json.RawMessage(`{"note":"superseded"}`)
			return m
		},
		expect: func(m appdb.ModelMeta, created, updated time.Time, version int64) appdb.ModelMeta {
			m.CreatedAt, m.UpdatedAt, m.Version = created, updated, version
			return m
		},
		withVersion: func(m appdb.ModelMeta, v int64) appdb.ModelMeta { m.Version = v; return m },
		create: func(ctx context.Context, r appdb.Repositories, m appdb.ModelMeta) (appdb.ModelMeta, error) {
			return r.Models().Create(ctx, m)
		},
		get: func(ctx context.Context, r appdb.Repositories, m appdb.ModelMeta) (appdb.ModelMeta, error) {
			return r.Models().Get(ctx, m.Name, m.ModelVersion)
		},
		update: func(ctx context.Context, r appdb.Repositories, m appdb.ModelMeta) (appdb.ModelMeta, error) {
			return r.Models().Update(ctx, m)
		},
		del: func(ctx context.Context, r appdb.Repositories, m appdb.ModelMeta) error {
			return r.Models().Delete(ctx, m.Name, m.ModelVersion)
		},
	}
}

func tokenCase() crudCase[appdb.APIToken] {
	return crudCase[appdb.APIToken]{
		sample: func(i int) appdb.APIToken {
			return appdb.APIToken{
				ID:           fmt.Sprintf("tok-%03d", i),
				Name:         fmt.Sprintf("gateway %d", i),
				Role:         appdb.RoleWrite,
				DevicePrefix: "site-a/",
				SecretHash:   hashOf(fmt.Sprintf("secret-%d", i)),
				LastUsedAt:   base.Add(time.Minute),
				ExpiresAt:    base.Add(365 * 24 * time.Hour),
			}
		},
		modify: func(t appdb.APIToken) appdb.APIToken {
			t.Name += " (old)"
			t.Role = appdb.RoleRead
			t.DevicePrefix = ""
			t.SecretHash = hashOf(t.ID + " rotated")
			t.LastUsedAt = t.LastUsedAt.Add(time.Hour)
			t.ExpiresAt = time.Time{}
			t.RevokedAt = base.Add(2*time.Hour + 3)
			return t
		},
		expect: func(t appdb.APIToken, created, updated time.Time, version int64) appdb.APIToken {
			t.LastUsedAt, t.ExpiresAt, t.RevokedAt = nt(t.LastUsedAt), nt(t.ExpiresAt), nt(t.RevokedAt)
			t.CreatedAt, t.UpdatedAt, t.Version = created, updated, version
			return t
		},
		withVersion: func(t appdb.APIToken, v int64) appdb.APIToken { t.Version = v; return t },
		clearID:     func(t appdb.APIToken) appdb.APIToken { t.ID = ""; return t },
		id:          func(t appdb.APIToken) string { return t.ID },
		create: func(ctx context.Context, r appdb.Repositories, t appdb.APIToken) (appdb.APIToken, error) {
			return r.Tokens().Create(ctx, t)
		},
		get: func(ctx context.Context, r appdb.Repositories, t appdb.APIToken) (appdb.APIToken, error) {
			return r.Tokens().Get(ctx, t.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, t appdb.APIToken) (appdb.APIToken, error) {
			return r.Tokens().Update(ctx, t)
		},
		del: func(ctx context.Context, r appdb.Repositories, t appdb.APIToken) error {
			return r.Tokens().Delete(ctx, t.ID)
		},
	}
}

func outboxCase() crudCase[appdb.OutboxMessage] {
	return crudCase[appdb.OutboxMessage]{
		sample: func(i int) appdb.OutboxMessage {
			return appdb.OutboxMessage{
				ID:            fmt.Sprintf("msg-%05d", i),
				Topic:         "anomalies",
				Key:           fmt.Sprintf("dev-%03d", i%7),
				Payload:       []byte(fmt.Sprintf(`{"anomaly":"anom-%05d","event":"opened"}`, i)),
				NextAttemptAt: base,
			}
		},
		modify: func(m appdb.OutboxMessage) appdb.OutboxMessage {
			m.Topic = "anomalies.v2"
			m.Key = "dev-999"
			m.Payload = []byte{0, 1, 2, 0xff}
			m.Attempts = 3
			m.NextAttemptAt = m.NextAttemptAt.Add(time.Minute + 9)
			m.DeliveredAt = base.Add(2 * time.Minute)
			m.LastError = "broker timeout"
			return m
		},
		expect: func(m appdb.OutboxMessage, created, updated time.Time, version int64) appdb.OutboxMessage {
			m.NextAttemptAt, m.DeliveredAt = nt(m.NextAttemptAt), nt(m.DeliveredAt)
			m.CreatedAt, m.UpdatedAt, m.Version = created, updated, version
			return m
		},
		withVersion: func(m appdb.OutboxMessage, v int64) appdb.OutboxMessage { m.Version = v; return m },
		clearID:     func(m appdb.OutboxMessage) appdb.OutboxMessage { m.ID = ""; return m },
		id:          func(m appdb.OutboxMessage) string { return m.ID },
		create: func(ctx context.Context, r appdb.Repositories, m appdb.OutboxMessage) (appdb.OutboxMessage, error) {
			return r.Outbox().Create(ctx, m)
		},
		get: func(ctx context.Context, r appdb.Repositories, m appdb.OutboxMessage) (appdb.OutboxMessage, error) {
			return r.Outbox().Get(ctx, m.ID)
		},
		update: func(ctx context.Context, r appdb.Repositories, m appdb.OutboxMessage) (appdb.OutboxMessage, error) {
			return r.Outbox().Update(ctx, m)
		},
		del: func(ctx context.Context, r appdb.Repositories, m appdb.OutboxMessage) error {
			return r.Outbox().Delete(ctx, m.ID)
		},
	}
}

func checkpointCase() crudCase[appdb.Checkpoint] {
	return crudCase[appdb.Checkpoint]{
		sample: func(i int) appdb.Checkpoint {
			return appdb.Checkpoint{
				Key:           fmt.Sprintf("machine,device=dev-%03d temp", i),
				ScoredThrough: base.Add(time.Duration(i) * time.Second),
				State:         []byte{1, 2, 3, byte(i), 0, 0xfe},
			}
		},
		modify: func(c appdb.Checkpoint) appdb.Checkpoint {
			c.ScoredThrough = c.ScoredThrough.Add(time.Minute + 1)
			c.State = []byte("state v2")
			return c
		},
		expect: func(c appdb.Checkpoint, created, updated time.Time, version int64) appdb.Checkpoint {
			c.ScoredThrough = nt(c.ScoredThrough)
			c.CreatedAt, c.UpdatedAt, c.Version = created, updated, version
			return c
		},
		withVersion: func(c appdb.Checkpoint, v int64) appdb.Checkpoint { c.Version = v; return c },
		create: func(ctx context.Context, r appdb.Repositories, c appdb.Checkpoint) (appdb.Checkpoint, error) {
			return r.Checkpoints().Create(ctx, c)
		},
		get: func(ctx context.Context, r appdb.Repositories, c appdb.Checkpoint) (appdb.Checkpoint, error) {
			return r.Checkpoints().Get(ctx, c.Key)
		},
		update: func(ctx context.Context, r appdb.Repositories, c appdb.Checkpoint) (appdb.Checkpoint, error) {
			return r.Checkpoints().Update(ctx, c)
		},
		del: func(ctx context.Context, r appdb.Repositories, c appdb.Checkpoint) error {
			return r.Checkpoints().Delete(ctx, c.Key)
		},
	}
}

func stateCase() crudCase[appdb.SystemState] {
	return crudCase[appdb.SystemState]{
		sample: func(i int) appdb.SystemState {
			return appdb.SystemState{Key: fmt.Sprintf("bootstrap.step%d", i), Value: "done"}
		},
		modify: func(s appdb.SystemState) appdb.SystemState { s.Value = `{"redo":true}`; return s },
		expect: func(s appdb.SystemState, created, updated time.Time, version int64) appdb.SystemState {
			s.CreatedAt, s.UpdatedAt, s.Version = created, updated, version
			return s
		},
		withVersion: func(s appdb.SystemState, v int64) appdb.SystemState { s.Version = v; return s },
		create: func(ctx context.Context, r appdb.Repositories, s appdb.SystemState) (appdb.SystemState, error) {
			return r.SystemState().Create(ctx, s)
		},
		get: func(ctx context.Context, r appdb.Repositories, s appdb.SystemState) (appdb.SystemState, error) {
			return r.SystemState().Get(ctx, s.Key)
		},
		update: func(ctx context.Context, r appdb.Repositories, s appdb.SystemState) (appdb.SystemState, error) {
			return r.SystemState().Update(ctx, s)
		},
		del: func(ctx context.Context, r appdb.Repositories, s appdb.SystemState) error {
			return r.SystemState().Delete(ctx, s.Key)
		},
	}
}
