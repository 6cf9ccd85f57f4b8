// Package appdb defines the application store of Vigil: the typed
// repositories for devices, detector configuration, anomalies, maintenance
// windows, model registry metadata, API tokens, the outbox, detection
// checkpoints and system state; their filter types; and the error kinds every
// backend returns.
//
// Backends live in subpackages (sqlitedb for the embedded SQLite file, pgdb
// for PostgreSQL) and all pass the conformance suite in package appdbtest.
//
// # Common contract
//
// Every repository is safe for concurrent use. A write is durable when the
// call returns nil: it survives a process crash (kill -9).
//
// Create stores a new entity and returns it as stored: CreatedAt and
// UpdatedAt set from the store's clock, Version set to 1, and an ID generated
// with NewID when the entity has a generated ID and none was given. Creating
// an entity whose identity exists fails with ErrConflict and changes nothing,
// so a redelivered Create of a deterministic ID never duplicates.
//
// Update replaces the mutable fields of an entity. It is optimistic: the
// entity passed must carry the Version it was read with; if the stored
// Version differs, Update fails with ErrConflict and changes nothing. On
// success it returns the entity as stored, with Version incremented and
// UpdatedAt set. CreatedAt is never changed by Update.
//
// Get and Delete of a missing identity fail with ErrNotFound.
//
// Find returns one page of the entities matching a filter, in the filter's
// documented sort order (ties broken by the identity, in the same
// direction), and an opaque cursor for the next page; the cursor
// is "" on the last page. Strings sort by their UTF-8 bytes (PostgreSQL:
// COLLATE "C"), identities must be valid UTF-8. Pagination is keyset based: walking all pages sees
// every entity that existed for the whole walk exactly once, even while
// others are inserted or deleted.
//
// Times: the store keeps times to the microsecond (TimePrecision) and returns
// them in UTC; a zero time.Time means "not set" and is returned as the zero
// value. Empty maps, slices and byte strings are returned as nil.
//
// Errors wrap one of the kinds below together with the operation and the
// identity concerned; test them with errors.Is. A cancelled or expired
// context makes an operation fail with an error wrapping ctx.Err().
package appdb

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Error kinds. Backends wrap them with the operation and identity; callers
// test with errors.Is.
var (
	// ErrNotFound: no entity has the identity given.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the identity (or another unique field) already exists on
	// Create, or the Version given to Update is stale.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: an entity or filter is malformed. The error is a
	// *FieldError naming the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the store has been closed, or a Tx is used after its
	// function returned.
	ErrClosed = errors.New("store closed")
	// ErrSchemaTooNew: the database was migrated by a newer Vigil than this
	// binary knows; opening it would risk corrupting it.
	ErrSchemaTooNew = errors.New("database schema newer than this binary")
)

// FieldError is an ErrInvalid naming the offending field.
type FieldError struct {
	Field  string // e.g. "anomaly.peak_score", "filter.limit"
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid argument: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a *FieldError for field.
func Invalid(field, reason string) error {
	return &FieldError{Field: field, Reason: reason}
}

// TimePrecision is the precision to which the store keeps times.
const TimePrecision = time.Microsecond

// NormalizeTime returns t as the store returns it: in UTC, truncated to
// TimePrecision; the zero time stays zero.
func NormalizeTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(TimePrecision)
}

// Repositories gives access to every repository of the store. In a Tx, all of
// them act inside the transaction.
type Repositories interface {
	Devices() DeviceRepository
	Detectors() DetectorConfigRepository
	Anomalies() AnomalyRepository
	Maintenance() MaintenanceRepository
	Models() ModelMetaRepository
	Tokens() TokenRepository
	Outbox() OutboxRepository
	Checkpoints() CheckpointRepository
	SystemState() SystemStateRepository
}

// Tx is a transaction: the same repositories, whose operations all commit or
// roll back together. A Tx must only be used by the function it was passed
// to, from one goroutine at a time, and not after that function returned
// (operations then fail with ErrClosed).
type Tx interface {
	Repositories
}

// Store is the application store.
type Store interface {
	Repositories
	// InTx runs fn in a transaction. If fn returns nil the transaction is
	// committed, and InTx returns the commit error; otherwise (or if fn
	// panics, after which the panic continues) it is rolled back and InTx
	// returns fn's error. Inside fn, use only tx: calling the Store itself
	// from fn may block until the transaction ends (backends with a single
	// writer) and in any case does not see the transaction's writes.
	// Backends may retry nothing: fn runs exactly once.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the store is usable, for health checks.
	Ping(ctx context.Context) error
	// Close releases the store. It is idempotent; after it, every operation
	// fails with ErrClosed.
	Close() error
}
