package appdbtest

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// crudCase drives the tests every entity shares.
type crudCase[T any] struct {
	// sample returns a full entity (every field set) with the i-th
	// identity; times carry nanoseconds and a non-UTC zone.
	sample func(i int) T
	// modify changes every mutable field of v (keeping identity and
	// Version).
	modify func(v T) T
	// expect is what the store returns for in, created at created, last
	// updated at updated, at version.
	expect func(in T, created, updated time.Time, version int64) T
	// withVersion returns v with its Version set.
	withVersion func(v T, version int64) T
	// clearID returns v without its identity, for entities whose Create
	// generates one; nil for the others. id reads the identity.
	clearID func(v T) T
	id      func(v T) string

	create func(ctx context.Context, r appdb.Repositories, v T) (T, error)
	get    func(ctx context.Context, r appdb.Repositories, v T) (T, error)
	update func(ctx context.Context, r appdb.Repositories, v T) (T, error)
	del    func(ctx context.Context, r appdb.Repositories, v T) error
}

func runCRUD[T any](t *testing.T, newHarness HarnessMaker, c crudCase[T]) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		in := c.sample(0)
		created := e.clock.now()
		got, err := c.create(ctx, s, in)
		wantErr(t, "create", err, nil)
		want := c.expect(in, nt(created), nt(created), 1)
		if d := diff(want, got); d != "" {
			t.Errorf("create returned (-want +got):\n%s", d)
		}
		checkTimes(t, "create returned", got)
		got, err = c.get(ctx, s, in)
		wantErr(t, "get", err, nil)
		if d := diff(want, got); d != "" {
			t.Errorf("get after create (-want +got):\n%s", d)
		}
		checkTimes(t, "get returned", got)

		updated := e.clock.advance(1500 * time.Millisecond)
		mod := c.modify(got)
		got, err = c.update(ctx, s, mod)
		wantErr(t, "update", err, nil)
		want = c.expect(mod, nt(created), nt(updated), 2)
		if d := diff(want, got); d != "" {
			t.Errorf("update returned (-want +got):\n%s", d)
		}
		got, err = c.get(ctx, s, in)
		wantErr(t, "get after update", err, nil)
		if d := diff(want, got); d != "" {
			t.Errorf("get after update (-want +got):\n%s", d)
		}
		checkTimes(t, "get after update returned", got)

		wantErr(t, "delete", c.del(ctx, s, in), nil)
		_, err = c.get(ctx, s, in)
		wantErr(t, "get after delete", err, appdb.ErrNotFound)
		wantErr(t, "second delete", c.del(ctx, s, in), appdb.ErrNotFound)
		// The identity is free again.
		_, err = c.create(ctx, s, in)
		wantErr(t, "create after delete", err, nil)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		_, err := c.create(ctx, s, c.sample(0))
		wantErr(t, "create", err, nil)
		missing := c.withVersion(c.sample(1), 1)
		_, err = c.get(ctx, s, missing)
		wantErr(t, "get missing", err, appdb.ErrNotFound)
		_, err = c.update(ctx, s, missing)
		wantErr(t, "update missing", err, appdb.ErrNotFound)
		wantErr(t, "delete missing", c.del(ctx, s, missing), appdb.ErrNotFound)
	})

	t.Run("CreateConflict", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		first, err := c.create(ctx, s, c.sample(0))
		wantErr(t, "create", err, nil)
		e.clock.advance(time.Second)
		// A redelivery, or a different entity with the same identity.
		_, err = c.create(ctx, s, c.sample(0))
		wantErr(t, "create again", err, appdb.ErrConflict)
		_, err = c.create(ctx, s, c.modify(c.sample(0)))
		wantErr(t, "create modified with same identity", err, appdb.ErrConflict)
		got, err := c.get(ctx, s, first)
		wantErr(t, "get", err, nil)
		if d := diff(first, got); d != "" {
			t.Errorf("stored entity changed by a conflicting create (-want +got):\n%s", d)
		}
	})

	t.Run("StaleVersion", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		v1, err := c.create(ctx, s, c.sample(0))
		wantErr(t, "create", err, nil)
		e.clock.advance(time.Second)
		v2, err := c.update(ctx, s, c.modify(v1))
		wantErr(t, "update at version 1", err, nil)
		for _, version := range []int64{0, 1, 3} {
			_, err = c.update(ctx, s, c.withVersion(v1, version))
			wantErr(t, "update at stale version", err, appdb.ErrConflict)
		}
		got, err := c.get(ctx, s, v1)
		wantErr(t, "get", err, nil)
		if d := diff(v2, got); d != "" {
			t.Errorf("stored entity changed by a stale update (-want +got):\n%s", d)
		}
		// v2 applies and gives version 3.
		v3, err := c.update(ctx, s, v2)
		wantErr(t, "update at version 2", err, nil)
		if got, want := versionOf(v3), int64(3); got != want {
			t.Errorf("version after second update = %d, want %d", got, want)
		}
	})

	if c.clearID != nil {
		t.Run("GeneratedID", func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, newHarness)
			ctx := t.Context()
			a, err := c.create(ctx, s, c.clearID(c.sample(0)))
			wantErr(t, "create without id", err, nil)
			b, err := c.create(ctx, s, c.clearID(c.sample(1)))
			wantErr(t, "create without id", err, nil)
			if c.id(a) == "" || c.id(a) == c.id(b) {
				t.Fatalf("generated ids %q and %q: want distinct, non-empty", c.id(a), c.id(b))
			}
			got, err := c.get(ctx, s, a)
			wantErr(t, "get generated", err, nil)
			if d := diff(a, got); d != "" {
				t.Errorf("get by generated id (-want +got):\n%s", d)
			}
		})
	}

	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newHarness)
		ctx := t.Context()
		s, err := e.h.Open(ctx, e.clock.now)
		wantErr(t, "open", err, nil)
		a, err := c.create(ctx, s, c.sample(0))
		wantErr(t, "create", err, nil)
		b, err := c.create(ctx, s, c.sample(1))
		wantErr(t, "create", err, nil)
		b, err = c.update(ctx, s, c.modify(b))
		wantErr(t, "update", err, nil)
		wantErr(t, "close", s.Close(), nil)
		s = e.open(t)
		for _, want := range []T{a, b} {
			got, err := c.get(ctx, s, want)
			wantErr(t, "get after reopen", err, nil)
			if d := diff(want, got); d != "" {
				t.Errorf("after reopen (-want +got):\n%s", d)
			}
		}
	})

	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newHarness)
		ctx := t.Context()
		s, err := e.h.Open(ctx, e.clock.now)
		wantErr(t, "open", err, nil)
		v, err := c.create(ctx, s, c.sample(0))
		wantErr(t, "create", err, nil)
		wantErr(t, "close", s.Close(), nil)
		_, err = c.create(ctx, s, c.sample(1))
		wantErr(t, "create after close", err, appdb.ErrClosed)
		_, err = c.get(ctx, s, v)
		wantErr(t, "get after close", err, appdb.ErrClosed)
		_, err = c.update(ctx, s, v)
		wantErr(t, "update after close", err, appdb.ErrClosed)
		wantErr(t, "delete after close", c.del(ctx, s, v), appdb.ErrClosed)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		v, err := c.create(t.Context(), s, c.sample(0))
		wantErr(t, "create", err, nil)
		_, err = c.create(ctx, s, c.sample(1))
		wantErr(t, "create with cancelled context", err, context.Canceled)
		_, err = c.get(ctx, s, v)
		wantErr(t, "get with cancelled context", err, context.Canceled)
		_, err = c.update(ctx, s, c.modify(v))
		wantErr(t, "update with cancelled context", err, context.Canceled)
		wantErr(t, "delete with cancelled context", c.del(ctx, s, v), context.Canceled)
		_, err = c.get(t.Context(), s, c.sample(1))
		wantErr(t, "get entity created with cancelled context", err, appdb.ErrNotFound)
		got, err := c.get(t.Context(), s, v)
		wantErr(t, "get", err, nil)
		if d := diff(v, got); d != "" {
			t.Errorf("entity changed by operations with a cancelled context (-want +got):\n%s", d)
		}
	})
}

// versionOf reads the Version field of any entity.
func versionOf(v any) int64 {
	switch e := v.(type) {
	case appdb.Device:
		return e.Version
	case appdb.DetectorConfig:
		return e.Version
	case appdb.Anomaly:
		return e.Version
	case appdb.MaintenanceWindow:
		return e.Version
	case appdb.ModelMeta:
		return e.Version
	case appdb.APIToken:
		return e.Version
	case appdb.OutboxMessage:
		return e.Version
	case appdb.Checkpoint:
		return e.Version
	case appdb.SystemState:
		return e.Version
	}
	panic("unknown entity")
}
