package appdbtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
)

var errBoom = errors.New("boom")

func testDeviceSeen(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, e := openStore(t, newHarness)
	ctx := t.Context()
	created := nt(e.clock.now())
	t1 := base.Add(time.Hour)
	steps := []struct {
		name        string
		seen        time.Time
		first, last time.Time
		version     int64
	}{
		{"first reading creates", t1, t1, t1, 1},
		{"later reading extends last", t1.Add(time.Minute), t1, t1.Add(time.Minute), 2},
		{"earlier reading extends first", t1.Add(-time.Minute), t1.Add(-time.Minute), t1.Add(time.Minute), 3},
		{"reading inside changes nothing", t1, t1.Add(-time.Minute), t1.Add(time.Minute), 3},
	}
	for _, st := range steps {
		now := nt(e.clock.advance(time.Second))
		if st.version == 1 {
			created = now
		}
		got, err := s.Devices().Seen(ctx, "dev-seen", st.seen)
		wantErr(t, st.name, err, nil)
		want := appdb.Device{ID: "dev-seen", FirstSeen: nt(st.first), LastSeen: nt(st.last), CreatedAt: created, Version: st.version}
		got.UpdatedAt = time.Time{}
		if d := diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, d)
		}
		stored, err := s.Devices().Get(ctx, "dev-seen")
		wantErr(t, "get", err, nil)
		stored.UpdatedAt = time.Time{}
		if d := diff(got, stored); d != "" {
			t.Errorf("%s: stored (-returned +stored):\n%s", st.name, d)
		}
	}
	// A device created without readings gets both bounds.
	_, err := s.Devices().Create(ctx, appdb.Device{ID: "dev-new", Name: "new"})
	wantErr(t, "create", err, nil)
	got, err := s.Devices().Seen(ctx, "dev-new", t1)
	wantErr(t, "seen", err, nil)
	if !got.FirstSeen.Equal(nt(t1)) || !got.LastSeen.Equal(nt(t1)) || got.Name != "new" || got.Version != 2 {
		t.Errorf("seen on created device: got %+v, want first=last=%v, name kept, version 2", got, nt(t1))
	}
	_, err = s.Devices().Seen(ctx, "dev-zero", time.Time{})
	wantErr(t, "seen at zero time", err, appdb.ErrInvalid)
}

func testAnomalyComments(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, e := openStore(t, newHarness)
	ctx := t.Context()
	a, err := s.Anomalies().Create(ctx, sampleAnomaly(1))
	wantErr(t, "create", err, nil)
	now := e.clock.advance(time.Minute)
	got, err := s.Anomalies().AddComment(ctx, a.ID, appdb.Comment{Author: "bob", Text: "looking"})
	wantErr(t, "add comment", err, nil)
	want := a
	want.Comments = append(want.Comments, appdb.Comment{Author: "bob", Text: "looking", At: nt(now)})
	want.UpdatedAt, want.Version = nt(now), 2
	if d := diff(want, got); d != "" {
		t.Errorf("after comment (-want +got):\n%s", d)
	}
	_, err = s.Anomalies().Update(ctx, a)
	wantErr(t, "update at version before the comment", err, appdb.ErrConflict)
	_, err = s.Anomalies().AddComment(ctx, "missing", appdb.Comment{Text: "x"})
	wantErr(t, "comment on missing", err, appdb.ErrNotFound)
	_, err = s.Anomalies().AddComment(ctx, a.ID, appdb.Comment{Author: "x"})
	wantErr(t, "empty comment", err, appdb.ErrInvalid)

	// Concurrent comments are all kept.
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Anomalies().AddComment(ctx, a.ID, appdb.Comment{Author: "c", Text: strconv.Itoa(i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantErr(t, "concurrent comment", err, nil)
	}
	got, err = s.Anomalies().Get(ctx, a.ID)
	wantErr(t, "get", err, nil)
	if len(got.Comments) != 2+n || got.Version != 2+n {
		t.Errorf("after %d concurrent comments: %d comments, version %d; want %d, %d", n, len(got.Comments), got.Version, 2+n, 2+n)
	}
}

func testModelVersions(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, _ := openStore(t, newHarness)
	ctx := t.Context()
	for i, name := range []string{"m", "m", "m", "other"} {
		got, err := s.Models().Create(ctx, appdb.ModelMeta{Name: name, Detector: "mad"})
		wantErr(t, "create without version", err, nil)
		want := []int{1, 2, 3, 1}[i]
		if got.ModelVersion != want || got.Stage != appdb.StageCandidate {
			t.Errorf("create #%d of %s: version %d stage %q, want %d %q", i, name, got.ModelVersion, got.Stage, want, appdb.StageCandidate)
		}
		stored, err := s.Models().Get(ctx, name, want)
		wantErr(t, "get", err, nil)
		if d := diff(got, stored); d != "" {
			t.Errorf("stored (-returned +stored):\n%s", d)
		}
	}
	_, err := s.Models().Create(ctx, appdb.ModelMeta{Name: "m", ModelVersion: 3})
	wantErr(t, "create existing version", err, appdb.ErrConflict)

	p2, err := s.Models().Promote(ctx, "m", 2)
	wantErr(t, "promote 2", err, nil)
	if p2.Stage != appdb.StageActive || p2.Version != 2 {
		t.Errorf("promoted: stage %q version %d, want active, 2", p2.Stage, p2.Version)
	}
	again, err := s.Models().Promote(ctx, "m", 2)
	wantErr(t, "promote 2 again", err, nil)
	if d := diff(p2, again); d != "" {
		t.Errorf("promoting the active version changed it (-want +got):\n%s", d)
	}
	_, err = s.Models().Promote(ctx, "m", 3)
	wantErr(t, "promote 3", err, nil)
	stages := map[int]appdb.ModelStage{1: appdb.StageCandidate, 2: appdb.StageArchived, 3: appdb.StageActive}
	for v, want := range stages {
		got, err := s.Models().Get(ctx, "m", v)
		wantErr(t, "get", err, nil)
		if got.Stage != want {
			t.Errorf("m@%d: stage %q, want %q", v, got.Stage, want)
		}
	}
	other, err := s.Models().Get(ctx, "other", 1)
	wantErr(t, "get other", err, nil)
	if other.Stage != appdb.StageCandidate {
		t.Errorf("promoting m changed other@1 to %q", other.Stage)
	}
	_, err = s.Models().Promote(ctx, "m", 9)
	wantErr(t, "promote missing", err, appdb.ErrNotFound)
	got, err := s.Models().Get(ctx, "m", 3)
	wantErr(t, "get", err, nil)
	if got.Stage != appdb.StageActive {
		t.Errorf("failed promote changed m@3 to %q", got.Stage)
	}
}

func testTokens(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, e := openStore(t, newHarness)
	ctx := t.Context()
	tok, err := s.Tokens().Create(ctx, tokenCase().sample(1))
	wantErr(t, "create", err, nil)
	got, err := s.Tokens().GetByHash(ctx, tok.SecretHash)
	wantErr(t, "get by hash", err, nil)
	if d := diff(tok, got); d != "" {
		t.Errorf("get by hash (-want +got):\n%s", d)
	}
	_, err = s.Tokens().GetByHash(ctx, hashOf("unknown"))
	wantErr(t, "get by unknown hash", err, appdb.ErrNotFound)
	dup := tokenCase().sample(2)
	dup.SecretHash = tok.SecretHash
	_, err = s.Tokens().Create(ctx, dup)
	wantErr(t, "create with a used hash", err, appdb.ErrConflict)

	used := base.Add(48 * time.Hour)
	e.clock.advance(time.Minute)
	wantErr(t, "touch", s.Tokens().Touch(ctx, tok.ID, used), nil)
	wantErr(t, "touch earlier", s.Tokens().Touch(ctx, tok.ID, used.Add(-time.Hour)), nil)
	got, err = s.Tokens().Get(ctx, tok.ID)
	wantErr(t, "get", err, nil)
	want := tok
	want.LastUsedAt = nt(used)
	if d := diff(want, got); d != "" {
		t.Errorf("after touch (-want +got); Version and UpdatedAt must not change:\n%s", d)
	}
	wantErr(t, "touch missing", s.Tokens().Touch(ctx, "missing", used), appdb.ErrNotFound)
	// An administrator's update at the version read before Touch applies.
	tok.RevokedAt = base
	_, err = s.Tokens().Update(ctx, tok)
	wantErr(t, "update after touch", err, nil)
}

func testOutboxClaim(t *testing.T, newHarness HarnessMaker) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		for i := 1; i <= 5; i++ {
			e.clock.advance(time.Millisecond)
			m, err := s.Outbox().Create(ctx, appdb.OutboxMessage{ID: fmt.Sprintf("m%d", i), Topic: "anomalies"})
			wantErr(t, "create", err, nil)
			if !m.NextAttemptAt.Equal(m.CreatedAt) {
				t.Errorf("NextAttemptAt defaults to %v, want CreatedAt %v", m.NextAttemptAt, m.CreatedAt)
			}
		}
		now := e.clock.now()
		_, err := s.Outbox().Create(ctx, appdb.OutboxMessage{ID: "later", Topic: "anomalies", NextAttemptAt: now.Add(time.Hour)})
		wantErr(t, "create later", err, nil)
		_, err = s.Outbox().Create(ctx, appdb.OutboxMessage{ID: "done", Topic: "anomalies", DeliveredAt: base})
		wantErr(t, "create delivered", err, nil)

		claim := func(limit int, wantIDsList []string, attempts int) {
			t.Helper()
			got, err := s.Outbox().Claim(ctx, limit, 30*time.Second)
			wantErr(t, "claim", err, nil)
			wantIDs(t, "claimed", idsOf(got, func(m appdb.OutboxMessage) string { return m.ID }), wantIDsList)
			for _, m := range got {
				if (attempts > 0 && m.Attempts != attempts) || !m.NextAttemptAt.Equal(nt(e.clock.now().Add(30*time.Second))) {
					t.Errorf("claimed %s: attempts %d next %v; want %d, now+30s", m.ID, m.Attempts, m.NextAttemptAt, attempts)
				}
				stored, err := s.Outbox().Get(ctx, m.ID)
				wantErr(t, "get claimed", err, nil)
				if d := diff(m, stored); d != "" {
					t.Errorf("claimed %s differs from stored (-claimed +stored):\n%s", m.ID, d)
				}
			}
		}
		claim(3, []string{"m1", "m2", "m3"}, 1)
		claim(10, []string{"m4", "m5"}, 1)
		claim(10, nil, 0)
		wantErr(t, "mark delivered", s.Outbox().MarkDelivered(ctx, "m1"), nil)
		wantErr(t, "mark delivered again", s.Outbox().MarkDelivered(ctx, "m1"), nil)
		wantErr(t, "mark missing", s.Outbox().MarkDelivered(ctx, "nope"), appdb.ErrNotFound)
		e.clock.advance(31 * time.Second) // leases expire
		claim(10, []string{"m2", "m3", "m4", "m5"}, 2)
		e.clock.advance(time.Hour)
		claim(1, []string{"m2"}, 3)
		// "later" was created at the same time as m5: ties go by ID.
		claim(10, []string{"m3", "m4", "later", "m5"}, -1)

		n, err := s.Outbox().DeleteDelivered(ctx, e.clock.now().Add(time.Second))
		wantErr(t, "delete delivered", err, nil)
		if n != 2 {
			t.Errorf("deleted %d delivered messages, want 2 (m1, done)", n)
		}
		_, err = s.Outbox().Get(ctx, "m1")
		wantErr(t, "get deleted", err, appdb.ErrNotFound)
		_, err = s.Outbox().Claim(ctx, 0, time.Second)
		wantErr(t, "claim 0", err, appdb.ErrInvalid)
		_, err = s.Outbox().Claim(ctx, 1, 0)
		wantErr(t, "claim with no lease", err, appdb.ErrInvalid)
	})

	t.Run("ConcurrentClaimers", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		const n = 60
		err := s.InTx(ctx, func(tx appdb.Tx) error {
			for i := range n {
				if _, err := tx.Outbox().Create(ctx, appdb.OutboxMessage{ID: fmt.Sprintf("m%03d", i), Topic: "t"}); err != nil {
					return err
				}
			}
			return nil
		})
		wantErr(t, "create", err, nil)
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range 4 {
			wg.Go(func() {
				for {
					got, err := s.Outbox().Claim(ctx, 4, time.Hour)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, m := range got {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("claimed %d distinct messages, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s claimed %d times within one lease", id, c)
			}
		}
	})
}

func testPut(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, e := openStore(t, newHarness)
	ctx := t.Context()
	created := nt(e.clock.now())
	c, err := s.Checkpoints().Put(ctx, appdb.Checkpoint{Key: "k", ScoredThrough: base, State: []byte("a"), Version: 42})
	wantErr(t, "put new checkpoint", err, nil)
	want := appdb.Checkpoint{Key: "k", ScoredThrough: nt(base), State: []byte("a"), CreatedAt: created, UpdatedAt: created, Version: 1}
	if d := diff(want, c); d != "" {
		t.Errorf("put new (-want +got):\n%s", d)
	}
	updated := nt(e.clock.advance(time.Second))
	c, err = s.Checkpoints().Put(ctx, appdb.Checkpoint{Key: "k", ScoredThrough: base.Add(time.Minute), State: []byte("b")})
	wantErr(t, "put existing checkpoint", err, nil)
	want = appdb.Checkpoint{Key: "k", ScoredThrough: nt(base.Add(time.Minute)), State: []byte("b"), CreatedAt: created, UpdatedAt: updated, Version: 2}
	if d := diff(want, c); d != "" {
		t.Errorf("put existing (-want +got):\n%s", d)
	}
	got, err := s.Checkpoints().Get(ctx, "k")
	wantErr(t, "get", err, nil)
	if d := diff(want, got); d != "" {
		t.Errorf("stored (-want +got):\n%s", d)
	}

	v, err := s.SystemState().Put(ctx, appdb.SystemState{Key: "bootstrap.done", Value: "true"})
	wantErr(t, "put new state", err, nil)
	if v.Version != 1 || v.Value != "true" {
		t.Errorf("put new state: %+v", v)
	}
	v, err = s.SystemState().Put(ctx, appdb.SystemState{Key: "bootstrap.done", Value: "false"})
	wantErr(t, "put state", err, nil)
	gotS, err := s.SystemState().Get(ctx, "bootstrap.done")
	wantErr(t, "get state", err, nil)
	if d := diff(v, gotS); d != "" || gotS.Version != 2 || gotS.Value != "false" || !gotS.CreatedAt.Equal(updated) {
		t.Errorf("state after second put: %+v (diff with returned %s)", gotS, d)
	}
}

// eventInTx writes an anomaly and its outbox message in one transaction.
func eventInTx(ctx context.Context, tx appdb.Tx, i int) error {
	a := sampleAnomaly(i)
	if _, err := tx.Anomalies().Create(ctx, a); err != nil {
		return err
	}
	_, err := tx.Outbox().Create(ctx, appdb.OutboxMessage{ID: "out-" + a.ID, Topic: "anomalies", Key: a.Device, Payload: []byte(a.ID)})
	return err
}

func wantEvent(t *testing.T, s appdb.Store, i int, present bool) {
	t.Helper()
	id := sampleAnomaly(i).ID
	_, errA := s.Anomalies().Get(t.Context(), id)
	_, errM := s.Outbox().Get(t.Context(), "out-"+id)
	if present {
		wantErr(t, "get anomaly "+id, errA, nil)
		wantErr(t, "get outbox message of "+id, errM, nil)
		return
	}
	wantErr(t, "get anomaly "+id, errA, appdb.ErrNotFound)
	wantErr(t, "get outbox message of "+id, errM, appdb.ErrNotFound)
}

func testTx(t *testing.T, newHarness HarnessMaker) {
	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		err := s.InTx(ctx, func(tx appdb.Tx) error {
			if err := eventInTx(ctx, tx, 1); err != nil {
				return err
			}
			// The transaction reads its own writes.
			if _, err := tx.Anomalies().Get(ctx, sampleAnomaly(1).ID); err != nil {
				return fmt.Errorf("get inside tx: %w", err)
			}
			ms, _, err := tx.Outbox().Find(ctx, appdb.OutboxFilter{})
			if err != nil || len(ms) != 1 {
				return fmt.Errorf("find inside tx: %d messages, %v", len(ms), err)
			}
			a, err := tx.Anomalies().Get(ctx, sampleAnomaly(1).ID)
			if err != nil {
				return err
			}
			a.State = appdb.StateResolved
			_, err = tx.Anomalies().Update(ctx, a)
			return err
		})
		wantErr(t, "tx", err, nil)
		wantEvent(t, s, 1, true)
		a, err := s.Anomalies().Get(ctx, sampleAnomaly(1).ID)
		wantErr(t, "get", err, nil)
		if a.State != appdb.StateResolved || a.Version != 2 {
			t.Errorf("after tx: state %q version %d, want resolved, 2", a.State, a.Version)
		}
	})

	t.Run("RollbackOnError", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		err := s.InTx(ctx, func(tx appdb.Tx) error {
			if err := eventInTx(ctx, tx, 1); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx returned %v, want the function's error", err)
		}
		wantEvent(t, s, 1, false)
	})

	t.Run("RollbackOnFailedWrite", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		_, err := s.Anomalies().Create(ctx, sampleAnomaly(2))
		wantErr(t, "create", err, nil)
		err = s.InTx(ctx, func(tx appdb.Tx) error {
			if err := eventInTx(ctx, tx, 1); err != nil {
				return err
			}
			return eventInTx(ctx, tx, 2) // redelivery: conflict
		})
		wantErr(t, "tx", err, appdb.ErrConflict)
		wantEvent(t, s, 1, false)
	})

	t.Run("RollbackOnPanic", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		func() {
			defer func() {
				if r := recover(); r != errBoom {
					t.Errorf("recovered %v, want the function's panic", r)
				}
			}()
			_ = s.InTx(ctx, func(tx appdb.Tx) error {
				if err := eventInTx(ctx, tx, 1); err != nil {
					return err
				}
				panic(errBoom)
			})
		}()
		wantEvent(t, s, 1, false)
		// The store is still usable.
		wantErr(t, "tx after panic", s.InTx(ctx, func(tx appdb.Tx) error { return eventInTx(ctx, tx, 3) }), nil)
		wantEvent(t, s, 3, true)
	})

	t.Run("UseAfterEnd", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		var kept appdb.Tx
		wantErr(t, "tx", s.InTx(ctx, func(tx appdb.Tx) error { kept = tx; return nil }), nil)
		_, err := kept.Anomalies().Create(ctx, sampleAnomaly(1))
		wantErr(t, "create through a finished tx", err, appdb.ErrClosed)
		_, err = kept.Devices().Get(ctx, "x")
		wantErr(t, "get through a finished tx", err, appdb.ErrClosed)
		wantEvent(t, s, 1, false)
	})
}

func testConcurrency(t *testing.T, newHarness HarnessMaker) {
	t.Run("Creators", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		const writers, each = 8, 20
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					a := sampleAnomaly(w*each + i)
					if _, err := s.Anomalies().Create(ctx, a); err != nil {
						t.Errorf("create %s: %v", a.ID, err)
					}
				}
			})
		}
		for range 2 { // readers at the same time
			wg.Go(func() {
				for range 10 {
					if _, _, err := s.Anomalies().Find(ctx, appdb.AnomalyFilter{Page: appdb.Page{Limit: 50}}); err != nil {
						t.Errorf("find: %v", err)
					}
				}
			})
		}
		wg.Wait()
		got := walk(t, "find", appdb.MaxLimit, appdb.Asc, func(p appdb.Page) ([]appdb.Anomaly, string, error) {
			return s.Anomalies().Find(ctx, appdb.AnomalyFilter{Page: p})
		})
		if len(got) != writers*each {
			t.Errorf("found %d anomalies after %d concurrent creates", len(got), writers*each)
		}
	})

	t.Run("SameID", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Anomalies().Create(ctx, sampleAnomaly(7)) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, appdb.ErrConflict):
				t.Errorf("racing create: %v, want nil or ErrConflict", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d racing creates of one id succeeded, want 1", ok)
		}
	})

	t.Run("SameVersion", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		a, err := s.Anomalies().Create(ctx, sampleAnomaly(7))
		wantErr(t, "create", err, nil)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				b := a
				b.Assignee = strconv.Itoa(i)
				_, errs[i] = s.Anomalies().Update(ctx, b)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, appdb.ErrConflict):
				t.Errorf("racing update: %v, want nil or ErrConflict", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d racing updates at one version succeeded, want 1", ok)
		}
	})

	t.Run("ReadModifyWrite", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		_, err := s.SystemState().Create(ctx, appdb.SystemState{Key: "counter", Value: "0"})
		wantErr(t, "create", err, nil)
		const workers, each = 4, 10
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					for attempt := 0; ; attempt++ {
						if attempt > 1000 {
							t.Errorf("increment: no progress after 1000 conflicts")
							return
						}
						v, err := s.SystemState().Get(ctx, "counter")
						if err != nil {
							t.Errorf("get: %v", err)
							return
						}
						n, _ := strconv.Atoi(v.Value)
						v.Value = strconv.Itoa(n + 1)
						_, err = s.SystemState().Update(ctx, v)
						if err == nil {
							break
						}
						if !errors.Is(err, appdb.ErrConflict) {
							t.Errorf("update: %v", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		v, err := s.SystemState().Get(ctx, "counter")
		wantErr(t, "get", err, nil)
		if v.Value != strconv.Itoa(workers*each) || v.Version != workers*each+1 {
			t.Errorf("counter = %s at version %d, want %d at %d: lost updates", v.Value, v.Version, workers*each, workers*each+1)
		}
	})

	t.Run("Transactions", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		const workers, each = 4, 8
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					n := w*each + i
					err := s.InTx(ctx, func(tx appdb.Tx) error { return eventInTx(ctx, tx, n) })
					if err != nil {
						t.Errorf("tx %d: %v", n, err)
					}
				}
			})
		}
		wg.Wait()
		for n := range workers * each {
			wantEvent(t, s, n, true)
		}
	})
}

func testReopen(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	e := newEnv(t, newHarness)
	ctx := t.Context()
	s, err := e.h.Open(ctx, e.clock.now)
	wantErr(t, "open", err, nil)
	data := anomalyData(t, s, 20)
	wantErr(t, "tx", s.InTx(ctx, func(tx appdb.Tx) error { return eventInTx(ctx, tx, 500) }), nil)
	wantErr(t, "close", s.Close(), nil)
	for round := range 2 { // reopening twice: migrations are idempotent
		s, err = e.h.Open(ctx, e.clock.now)
		wantErr(t, fmt.Sprintf("reopen %d", round), err, nil)
		got := walk(t, "find", 0, appdb.Asc, func(p appdb.Page) ([]appdb.Anomaly, string, error) {
			return s.Anomalies().Find(ctx, appdb.AnomalyFilter{Device: "dev-1", Page: p})
		})
		var want []appdb.Anomaly
		for _, a := range data {
			if a.Device == "dev-1" {
				want = append(want, a)
			}
		}
		wantIDs(t, "after reopen", idsOf(got, func(a appdb.Anomaly) string { return a.ID }), sortAnomalies(want))
		wantEvent(t, s, 500, true)
		wantErr(t, "close", s.Close(), nil)
	}
}

func testCancelled(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, _ := openStore(t, newHarness)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.InTx(cancelled, func(tx appdb.Tx) error { called = true; return nil })
	wantErr(t, "InTx with cancelled context", err, context.Canceled)
	if called {
		t.Errorf("InTx ran its function with a cancelled context")
	}
	_, _, err = s.Anomalies().Find(cancelled, appdb.AnomalyFilter{})
	wantErr(t, "find with cancelled context", err, context.Canceled)
	_, err = s.Outbox().Claim(cancelled, 1, time.Second)
	wantErr(t, "claim with cancelled context", err, context.Canceled)
	if err := s.Ping(cancelled); err == nil {
		t.Errorf("ping with cancelled context: no error")
	}

	// Cancelled in the middle of a transaction: nothing is committed.
	ctx, cancel := context.WithCancel(t.Context())
	err = s.InTx(ctx, func(tx appdb.Tx) error {
		if err := eventInTx(ctx, tx, 1); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if err == nil {
		t.Errorf("InTx whose context was cancelled before commit: no error")
	}
	wantEvent(t, s, 1, false)
	wantErr(t, "ping", s.Ping(t.Context()), nil)
}

func testClose(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	e := newEnv(t, newHarness)
	ctx := t.Context()
	s, err := e.h.Open(ctx, e.clock.now)
	wantErr(t, "open", err, nil)
	wantErr(t, "ping", s.Ping(ctx), nil)
	wantErr(t, "close", s.Close(), nil)
	wantErr(t, "close again", s.Close(), nil)
	ops := []struct {
		name string
		op   func() error
	}{
		{"ping", func() error { return s.Ping(ctx) }},
		{"tx", func() error { return s.InTx(ctx, func(appdb.Tx) error { return nil }) }},
		{"find devices", func() error { _, _, err := s.Devices().Find(ctx, appdb.DeviceFilter{}); return err }},
		{"device seen", func() error { _, err := s.Devices().Seen(ctx, "d", base); return err }},
		{"find detectors", func() error { _, _, err := s.Detectors().Find(ctx, appdb.DetectorConfigFilter{}); return err }},
		{"find anomalies", func() error { _, _, err := s.Anomalies().Find(ctx, appdb.AnomalyFilter{}); return err }},
		{"comment", func() error { _, err := s.Anomalies().AddComment(ctx, "a", appdb.Comment{Text: "x"}); return err }},
		{"find maintenance", func() error { _, _, err := s.Maintenance().Find(ctx, appdb.MaintenanceFilter{}); return err }},
		{"find models", func() error { _, _, err := s.Models().Find(ctx, appdb.ModelMetaFilter{}); return err }},
		{"promote", func() error { _, err := s.Models().Promote(ctx, "m", 1); return err }},
		{"find tokens", func() error { _, _, err := s.Tokens().Find(ctx, appdb.TokenFilter{}); return err }},
		{"token by hash", func() error { _, err := s.Tokens().GetByHash(ctx, hashOf("x")); return err }},
		{"touch", func() error { return s.Tokens().Touch(ctx, "t", base) }},
		{"find outbox", func() error { _, _, err := s.Outbox().Find(ctx, appdb.OutboxFilter{}); return err }},
		{"claim", func() error { _, err := s.Outbox().Claim(ctx, 1, time.Second); return err }},
		{"mark delivered", func() error { return s.Outbox().MarkDelivered(ctx, "m") }},
		{"delete delivered", func() error { _, err := s.Outbox().DeleteDelivered(ctx, base); return err }},
		{"find checkpoints", func() error { _, _, err := s.Checkpoints().Find(ctx, appdb.CheckpointFilter{}); return err }},
		{"put checkpoint", func() error { _, err := s.Checkpoints().Put(ctx, appdb.Checkpoint{Key: "k"}); return err }},
		{"find state", func() error { _, _, err := s.SystemState().Find(ctx, appdb.SystemStateFilter{}); return err }},
		{"put state", func() error { _, err := s.SystemState().Put(ctx, appdb.SystemState{Key: "k"}); return err }},
	}
	for _, o := range ops {
		wantErr(t, o.name+" after close", o.op(), appdb.ErrClosed)
	}
}
