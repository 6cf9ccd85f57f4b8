package appdb

import (
	"context"
	"time"
)

// DeviceFilter selects devices. Sort field: ID.
type DeviceFilter struct {
	IDPrefix string            // devices whose ID starts with it
	Labels   map[string]string // devices having all these labels
	LastSeen TimeRange         // devices last seen in the range
	Page
}

// DeviceRepository stores devices, keyed by ID.
type DeviceRepository interface {
	Create(ctx context.Context, d Device) (Device, error)
	Get(ctx context.Context, id string) (Device, error)
	Update(ctx context.Context, d Device) (Device, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f DeviceFilter) ([]Device, string, error)
	// Seen records a reading from device id at t: it creates the device
	// if missing (FirstSeen = LastSeen = t), else widens [FirstSeen,
	// LastSeen] to include t. It increments Version when it changes
	// anything, and returns the device as stored.
	Seen(ctx context.Context, id string, t time.Time) (Device, error)
}

// DetectorConfigFilter selects detector configurations. Sort field: CreatedAt.
type DetectorConfigFilter struct {
	Detector  string    // equality
	ScopeKind ScopeKind // equality
	Target    string    // scope target equality (device ID or series key)
	Enabled   *bool     // nil: both
	Page
}

// DetectorConfigRepository stores detector configurations, keyed by ID.
type DetectorConfigRepository interface {
	Create(ctx context.Context, c DetectorConfig) (DetectorConfig, error)
	Get(ctx context.Context, id string) (DetectorConfig, error)
	Update(ctx context.Context, c DetectorConfig) (DetectorConfig, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f DetectorConfigFilter) ([]DetectorConfig, string, error)
}

// AnomalyFilter selects anomalies. Sort field: Start.
type AnomalyFilter struct {
	Device    string       // equality
	SeriesKey string       // equality
	State     AnomalyState // equality
	Severity  Severity     // equality
	Ongoing   *bool        // nil: both; true: End zero; false: End set
	Start     TimeRange    // anomalies starting in the range
	Page
}

// AnomalyRepository stores anomaly events, keyed by their deterministic ID.
// Create of an existing ID fails with ErrConflict: a redelivered event is
// recognised, never duplicated.
type AnomalyRepository interface {
	Create(ctx context.Context, a Anomaly) (Anomaly, error)
	Get(ctx context.Context, id string) (Anomaly, error)
	Update(ctx context.Context, a Anomaly) (Anomaly, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f AnomalyFilter) ([]Anomaly, string, error)
	// AddComment appends c (At set from the store's clock when zero)
	// without a Version check, since comments only accumulate; it
	// increments Version and returns the anomaly as stored.
	AddComment(ctx context.Context, id string, c Comment) (Anomaly, error)
}

// MaintenanceFilter selects maintenance windows. Sort field: Start.
type MaintenanceFilter struct {
	ScopeKind ScopeKind // equality
	Target    string    // scope target equality
	// ActiveAt, when not zero, selects windows with Start <= ActiveAt < End.
	ActiveAt time.Time
	// Overlaps, when not zero, selects windows intersecting the range.
	Overlaps TimeRange
	Page
}

// MaintenanceRepository stores maintenance windows, keyed by ID.
type MaintenanceRepository interface {
	Create(ctx context.Context, w MaintenanceWindow) (MaintenanceWindow, error)
	Get(ctx context.Context, id string) (MaintenanceWindow, error)
	Update(ctx context.Context, w MaintenanceWindow) (MaintenanceWindow, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f MaintenanceFilter) ([]MaintenanceWindow, string, error)
}

// ModelMetaFilter selects model versions. Sort field: ModelVersion, ties
// broken by Name.
type ModelMetaFilter struct {
	Name     string     // equality
	Detector string     // equality
	Stage    ModelStage // equality
	Page
}

// ModelMetaRepository is the model registry's metadata, keyed by (Name,
// ModelVersion).
type ModelMetaRepository interface {
	// Create stores a new version; ModelVersion 0 assigns the next one of
	// Name. An existing (Name, ModelVersion) fails with ErrConflict.
	Create(ctx context.Context, m ModelMeta) (ModelMeta, error)
	Get(ctx context.Context, name string, version int) (ModelMeta, error)
	Update(ctx context.Context, m ModelMeta) (ModelMeta, error)
	Delete(ctx context.Context, name string, version int) error
	Find(ctx context.Context, f ModelMetaFilter) ([]ModelMeta, string, error)
	// Promote makes version the active one of name and archives the
	// version active before, atomically. It returns the promoted version.
	Promote(ctx context.Context, name string, version int) (ModelMeta, error)
}

// TokenFilter selects API tokens. Sort field: CreatedAt.
type TokenFilter struct {
	Role    Role  // equality
	Revoked *bool // nil: both
	Page
}

// TokenRepository stores API tokens, keyed by ID, with SecretHash unique.
type TokenRepository interface {
	// Create fails with ErrConflict when the ID or the SecretHash exists.
	Create(ctx context.Context, t APIToken) (APIToken, error)
	Get(ctx context.Context, id string) (APIToken, error)
	// GetByHash finds the token with this secret hash (revoked or not: the
	// caller checks RevokedAt and ExpiresAt).
	GetByHash(ctx context.Context, hash []byte) (APIToken, error)
	Update(ctx context.Context, t APIToken) (APIToken, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f TokenFilter) ([]APIToken, string, error)
	// Touch sets LastUsedAt to at (if later than the stored value) without
	// a Version check and without changing Version, so that frequent use
	// never conflicts with an administrator's Update.
	Touch(ctx context.Context, id string, at time.Time) error
}

// OutboxFilter selects outbox messages. Sort field: CreatedAt.
type OutboxFilter struct {
	Topic     string    // equality
	Key       string    // equality
	Delivered *bool     // nil: both
	Created   TimeRange // messages created in the range
	Page
}

// OutboxRepository is the transactional outbox.
type OutboxRepository interface {
	Create(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	Get(ctx context.Context, id string) (OutboxMessage, error)
	Update(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	Delete(ctx context.Context, id string) error
	Find(ctx context.Context, f OutboxFilter) ([]OutboxMessage, string, error)
	// Claim takes up to limit undelivered messages due now (NextAttemptAt
	// <= now), oldest first, and leases them: Attempts is incremented and
	// NextAttemptAt set to now + lease, so no other claimer gets them until
	// the lease expires. It returns them as stored. Concurrent claimers
	// never get the same message within a lease.
	Claim(ctx context.Context, limit int, lease time.Duration) ([]OutboxMessage, error)
	// MarkDelivered sets DeliveredAt to now without a Version check.
	// Marking a delivered message again is a no-op.
	MarkDelivered(ctx context.Context, id string) error
	// DeleteDelivered deletes the messages delivered before t and returns
	// how many.
	DeleteDelivered(ctx context.Context, before time.Time) (int, error)
}

// CheckpointFilter selects checkpoints. Sort field: Key.
type CheckpointFilter struct {
	KeyPrefix string
	Page
}

// CheckpointRepository stores detection checkpoints, keyed by Key.
type CheckpointRepository interface {
	Create(ctx context.Context, c Checkpoint) (Checkpoint, error)
	Get(ctx context.Context, key string) (Checkpoint, error)
	Update(ctx context.Context, c Checkpoint) (Checkpoint, error)
	Delete(ctx context.Context, key string) error
	Find(ctx context.Context, f CheckpointFilter) ([]Checkpoint, string, error)
	// Put creates or replaces the checkpoint, ignoring c.Version (last
	// writer wins; the owner of a series is the only writer). It returns
	// the checkpoint as stored.
	Put(ctx context.Context, c Checkpoint) (Checkpoint, error)
}

// SystemStateFilter selects system state entries. Sort field: Key.
type SystemStateFilter struct {
	KeyPrefix string
	Page
}

// SystemStateRepository stores system state, keyed by Key.
type SystemStateRepository interface {
	Create(ctx context.Context, s SystemState) (SystemState, error)
	Get(ctx context.Context, key string) (SystemState, error)
	Update(ctx context.Context, s SystemState) (SystemState, error)
	Delete(ctx context.Context, key string) error
	Find(ctx context.Context, f SystemStateFilter) ([]SystemState, string, error)
	// Put creates or replaces the value, ignoring s.Version.
	Put(ctx context.Context, s SystemState) (SystemState, error)
}
