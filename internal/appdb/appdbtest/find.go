package appdbtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// walk reads every page of a Find with page size limit and returns the items
// in the order read. It checks that every page but the last is full.
func walk[T any](t *testing.T, what string, limit int, order appdb.Order, find func(p appdb.Page) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("%s: more than 10000 pages; the cursor does not advance", what)
		}
		items, next, err := find(appdb.Page{Order: order, Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("%s: page %d: %v", what, pages, err)
		}
		eff := limit
		if eff == 0 {
			eff = appdb.DefaultLimit
		}
		if len(items) > eff {
			t.Fatalf("%s: page %d has %d items, limit %d", what, pages, len(items), eff)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) != eff {
			t.Fatalf("%s: page %d has %d items and a next cursor, want a full page of %d", what, pages, len(items), eff)
		}
		cursor = next
	}
}

func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = id(v)
	}
	return out
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("%s: ids (-want +got):\n%s", what, d)
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func testInvalid(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, _ := openStore(t, newHarness)
	anom := func(f func(*appdb.Anomaly)) func(context.Context) error {
		return func(ctx context.Context) error {
			a := sampleAnomaly(1)
			f(&a)
			_, err := s.Anomalies().Create(ctx, a)
			return err
		}
	}
	findAnom := func(f appdb.AnomalyFilter) func(context.Context) error {
		return func(ctx context.Context) error {
			_, _, err := s.Anomalies().Find(ctx, f)
			return err
		}
	}
	det := func(f func(*appdb.DetectorConfig)) func(context.Context) error {
		return func(ctx context.Context) error {
			c := detectorCase().sample(1)
			f(&c)
			_, err := s.Detectors().Create(ctx, c)
			return err
		}
	}
	tests := []struct {
		name  string
		op    func(context.Context) error
		field string
	}{
		{"device empty id", func(ctx context.Context) error {
			_, err := s.Devices().Create(ctx, appdb.Device{})
			return err
		}, "device.id"},
		{"device negative interval", func(ctx context.Context) error {
			_, err := s.Devices().Create(ctx, appdb.Device{ID: "d", ReportInterval: -time.Second})
			return err
		}, "device.report_interval"},
		{"device last seen before first", func(ctx context.Context) error {
			_, err := s.Devices().Create(ctx, appdb.Device{ID: "d", FirstSeen: base, LastSeen: base.Add(-time.Hour)})
			return err
		}, "device.last_seen"},
		{"detector without detector", det(func(c *appdb.DetectorConfig) { c.Detector = "" }), "detector_config.detector"},
		{"detector unknown scope", det(func(c *appdb.DetectorConfig) { c.Scope.Kind = "planet" }), "detector_config.scope.kind"},
		{"detector device scope without target", det(func(c *appdb.DetectorConfig) {
			c.Scope = appdb.Scope{Kind: appdb.ScopeDevice}
		}), "detector_config.scope.target"},
		{"detector params not JSON", det(func(c *appdb.DetectorConfig) { c.Params = []byte("{window: 3") }), "detector_config.params"},
		{"anomaly empty id", anom(func(a *appdb.Anomaly) { a.ID = "" }), "anomaly.id"},
		{"anomaly without device", anom(func(a *appdb.Anomaly) { a.Device = "" }), "anomaly.device"},
		{"anomaly zero start", anom(func(a *appdb.Anomaly) { a.Start = time.Time{} }), "anomaly.start"},
		{"anomaly end before start", anom(func(a *appdb.Anomaly) { a.End = a.Start.Add(-time.Second) }), "anomaly.end"},
		{"anomaly score above 1", anom(func(a *appdb.Anomaly) { a.PeakScore = 1.5 }), "anomaly.peak_score"},
		{"anomaly score NaN", anom(func(a *appdb.Anomaly) { a.PeakScore = math.NaN() }), "anomaly.peak_score"},
		{"anomaly no severity", anom(func(a *appdb.Anomaly) { a.Severity = "" }), "anomaly.severity"},
		{"anomaly unknown state", anom(func(a *appdb.Anomaly) { a.State = "snoozed" }), "anomaly.state"},
		{"anomaly empty comment", anom(func(a *appdb.Anomaly) { a.Comments = []appdb.Comment{{Author: "x"}} }), "anomaly.comments[0].text"},
		{"maintenance end before start", func(ctx context.Context) error {
			w := maintenanceCase().sample(1)
			w.End = w.Start
			_, err := s.Maintenance().Create(ctx, w)
			return err
		}, "maintenance.end"},
		{"maintenance empty selector", func(ctx context.Context) error {
			w := maintenanceCase().sample(1)
			w.Scope = appdb.Scope{Kind: appdb.ScopeSelector}
			_, err := s.Maintenance().Create(ctx, w)
			return err
		}, "maintenance.scope.selector"},
		{"model negative version", func(ctx context.Context) error {
			m := modelCase().sample(1)
			m.ModelVersion = -1
			_, err := s.Models().Create(ctx, m)
			return err
		}, "model.model_version"},
		{"model unknown stage", func(ctx context.Context) error {
			m := modelCase().sample(1)
			m.Stage = "live"
			_, err := s.Models().Create(ctx, m)
			return err
		}, "model.stage"},
		{"token unknown role", func(ctx context.Context) error {
			tok := tokenCase().sample(1)
			tok.Role = "root"
			_, err := s.Tokens().Create(ctx, tok)
			return err
		}, "token.role"},
		{"token short hash", func(ctx context.Context) error {
			tok := tokenCase().sample(1)
			tok.SecretHash = []byte("pw")
			_, err := s.Tokens().Create(ctx, tok)
			return err
		}, "token.secret_hash"},
		{"outbox without topic", func(ctx context.Context) error {
			_, err := s.Outbox().Create(ctx, appdb.OutboxMessage{ID: "m"})
			return err
		}, "outbox.topic"},
		{"checkpoint empty key", func(ctx context.Context) error {
			_, err := s.Checkpoints().Put(ctx, appdb.Checkpoint{})
			return err
		}, "checkpoint.key"},
		{"system state empty key", func(ctx context.Context) error {
			_, err := s.SystemState().Put(ctx, appdb.SystemState{Value: "x"})
			return err
		}, "system_state.key"},
		{"find range from after to", findAnom(appdb.AnomalyFilter{Start: appdb.TimeRange{From: base, To: base.Add(-1)}}), "filter.start"},
		{"find negative limit", findAnom(appdb.AnomalyFilter{Page: appdb.Page{Limit: -1}}), "filter.limit"},
		{"find limit above max", findAnom(appdb.AnomalyFilter{Page: appdb.Page{Limit: appdb.MaxLimit + 1}}), "filter.limit"},
		{"find unknown order", findAnom(appdb.AnomalyFilter{Page: appdb.Page{Order: 7}}), "filter.order"},
		{"find garbage cursor", findAnom(appdb.AnomalyFilter{Page: appdb.Page{Cursor: "not a cursor!"}}), "filter.cursor"},
		{"find checkpoints garbage cursor", func(ctx context.Context) error {
			_, _, err := s.Checkpoints().Find(ctx, appdb.CheckpointFilter{Page: appdb.Page{Cursor: "%%%"}})
			return err
		}, "filter.cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(t.Context())
			if !errors.Is(err, appdb.ErrInvalid) {
				t.Fatalf("got error %v, want ErrInvalid", err)
			}
			var fe *appdb.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *appdb.FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("error names field %q, want %q (error: %v)", fe.Field, tt.field, err)
			}
		})
	}
	// Nothing invalid was stored.
	as, _, err := s.Anomalies().Find(t.Context(), appdb.AnomalyFilter{})
	wantErr(t, "find anomalies", err, nil)
	if len(as) != 0 {
		t.Errorf("found %d anomalies after invalid creates, want 0", len(as))
	}
}

// anomalyData creates n anomalies in one transaction: devices by i%3, series
// by i%4, states by (i/3)%3, severities by i%2, ended when i%5 == 0, and
// starts in pairs (i/2 minutes), so that sort keys repeat.
func anomalyData(t *testing.T, s appdb.Store, n int) []appdb.Anomaly {
	t.Helper()
	states := []appdb.AnomalyState{appdb.StateOpen, appdb.StateAcknowledged, appdb.StateResolved}
	sevs := []appdb.Severity{appdb.SeverityInfo, appdb.SeverityCritical}
	out := make([]appdb.Anomaly, 0, n)
	err := s.InTx(t.Context(), func(tx appdb.Tx) error {
		for i := range n {
			a := appdb.Anomaly{
				// IDs not in insertion order, so ties are broken by ID, not by luck.
				ID:        fmt.Sprintf("a-%03d", (i*37)%n),
				Device:    fmt.Sprintf("dev-%d", i%3),
				SeriesKey: fmt.Sprintf("s-%d", i%4),
				Start:     base.Add(time.Duration(i/2) * time.Minute),
				PeakScore: float64(i%10) / 10,
				Severity:  sevs[i%2],
				State:     states[(i/3)%3],
			}
			if i%5 == 0 {
				a.End = a.Start.Add(time.Minute)
			}
			got, err := tx.Anomalies().Create(t.Context(), a)
			if err != nil {
				return err
			}
			out = append(out, got)
		}
		return nil
	})
	wantErr(t, "create anomalies", err, nil)
	return out
}

func sortAnomalies(as []appdb.Anomaly) []string {
	as = slices.Clone(as)
	sort.Slice(as, func(i, j int) bool {
		if !as[i].Start.Equal(as[j].Start) {
			return as[i].Start.Before(as[j].Start)
		}
		return as[i].ID < as[j].ID
	})
	return idsOf(as, func(a appdb.Anomaly) string { return a.ID })
}

func testFindAnomalies(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, _ := openStore(t, newHarness)
	data := anomalyData(t, s, 60)
	mid := base.Add(10 * time.Minute)
	tests := []struct {
		name   string
		filter appdb.AnomalyFilter
		match  func(a appdb.Anomaly) bool
	}{
		{"all", appdb.AnomalyFilter{}, func(appdb.Anomaly) bool { return true }},
		{"device", appdb.AnomalyFilter{Device: "dev-1"}, func(a appdb.Anomaly) bool { return a.Device == "dev-1" }},
		{"series", appdb.AnomalyFilter{SeriesKey: "s-3"}, func(a appdb.Anomaly) bool { return a.SeriesKey == "s-3" }},
		{"state", appdb.AnomalyFilter{State: appdb.StateAcknowledged}, func(a appdb.Anomaly) bool { return a.State == appdb.StateAcknowledged }},
		{"severity", appdb.AnomalyFilter{Severity: appdb.SeverityCritical}, func(a appdb.Anomaly) bool { return a.Severity == appdb.SeverityCritical }},
		{"ongoing", appdb.AnomalyFilter{Ongoing: ptr(true)}, func(a appdb.Anomaly) bool { return a.Ongoing() }},
		{"ended", appdb.AnomalyFilter{Ongoing: ptr(false)}, func(a appdb.Anomaly) bool { return !a.Ongoing() }},
		{"start from", appdb.AnomalyFilter{Start: appdb.TimeRange{From: mid}}, func(a appdb.Anomaly) bool { return !a.Start.Before(nt(mid)) }},
		{"start to", appdb.AnomalyFilter{Start: appdb.TimeRange{To: mid}}, func(a appdb.Anomaly) bool { return a.Start.Before(nt(mid)) }},
		{"start range", appdb.AnomalyFilter{Start: appdb.TimeRange{From: base.Add(3 * time.Minute), To: mid}}, func(a appdb.Anomaly) bool {
			return !a.Start.Before(nt(base.Add(3*time.Minute))) && a.Start.Before(nt(mid))
		}},
		{"empty range", appdb.AnomalyFilter{Start: appdb.TimeRange{From: mid, To: mid}}, func(appdb.Anomaly) bool { return false }},
		{"device and state and range", appdb.AnomalyFilter{Device: "dev-0", State: appdb.StateOpen, Start: appdb.TimeRange{From: base.Add(2 * time.Minute)}},
			func(a appdb.Anomaly) bool {
				return a.Device == "dev-0" && a.State == appdb.StateOpen && !a.Start.Before(nt(base.Add(2*time.Minute)))
			}},
		{"no match", appdb.AnomalyFilter{Device: "dev-9"}, func(appdb.Anomaly) bool { return false }},
	}
	for _, tt := range tests {
		var matching []appdb.Anomaly
		for _, a := range data {
			if tt.match(a) {
				matching = append(matching, a)
			}
		}
		asc := sortAnomalies(matching)
		for _, limit := range []int{0, 1, 7, 60} {
			for _, order := range []appdb.Order{appdb.Asc, appdb.Desc} {
				t.Run(fmt.Sprintf("%s/limit=%d/order=%s", tt.name, limit, order), func(t *testing.T) {
					got := walk(t, "find", limit, order, func(p appdb.Page) ([]appdb.Anomaly, string, error) {
						f := tt.filter
						f.Page = p
						return s.Anomalies().Find(t.Context(), f)
					})
					want := asc
					if order == appdb.Desc {
						want = reversed(asc)
					}
					wantIDs(t, "find", idsOf(got, func(a appdb.Anomaly) string { return a.ID }), want)
					if limit == 60 || limit == 0 {
						// Whole entities come back, not just ids.
						byID := map[string]appdb.Anomaly{}
						for _, a := range data {
							byID[a.ID] = a
						}
						for _, a := range got {
							if d := diff(byID[a.ID], a); d != "" {
								t.Errorf("found %s (-want +got):\n%s", a.ID, d)
							}
						}
					}
				})
			}
		}
	}
}

func testPagination(t *testing.T, newHarness HarnessMaker) {
	t.Run("EqualSortKeys", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		var want []string
		err := s.InTx(t.Context(), func(tx appdb.Tx) error {
			for i := range 25 {
				a := sampleAnomaly(i)
				a.ID = fmt.Sprintf("same-%02d", (i*7)%25)
				a.Start = base
				if _, err := tx.Anomalies().Create(t.Context(), a); err != nil {
					return err
				}
				want = append(want, a.ID)
			}
			return nil
		})
		wantErr(t, "create", err, nil)
		slices.Sort(want)
		for _, order := range []appdb.Order{appdb.Asc, appdb.Desc} {
			got := walk(t, "find", 4, order, func(p appdb.Page) ([]appdb.Anomaly, string, error) {
				return s.Anomalies().Find(t.Context(), appdb.AnomalyFilter{Page: p})
			})
			w := want
			if order == appdb.Desc {
				w = reversed(want)
			}
			wantIDs(t, "order "+order.String(), idsOf(got, func(a appdb.Anomaly) string { return a.ID }), w)
		}
	})

	t.Run("StableUnderWrites", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		original := map[string]bool{}
		err := s.InTx(ctx, func(tx appdb.Tx) error {
			for i := range 30 {
				a := sampleAnomaly(i)
				if _, err := tx.Anomalies().Create(ctx, a); err != nil {
					return err
				}
				original[a.ID] = true
			}
			return nil
		})
		wantErr(t, "create", err, nil)
		for _, order := range []appdb.Order{appdb.Asc, appdb.Desc} {
			seen := map[string]int{}
			var cursor string
			extra := 0
			for page := 0; ; page++ {
				items, next, err := s.Anomalies().Find(ctx, appdb.AnomalyFilter{Page: appdb.Page{Order: order, Limit: 4, Cursor: cursor}})
				wantErr(t, "find", err, nil)
				for _, a := range items {
					seen[a.ID]++
				}
				if next == "" {
					break
				}
				cursor = next
				// Between pages: insert before, at and after the cursor
				// position, and delete an entity already read.
				last := items[len(items)-1]
				for _, start := range []time.Time{base.Add(-time.Hour), last.Start, base.Add(100 * time.Hour)} {
					extra++
					a := sampleAnomaly(1000 + extra)
					a.ID = fmt.Sprintf("extra-%s-%03d", order, extra)
					a.Start = start
					_, err := s.Anomalies().Create(ctx, a)
					wantErr(t, "insert during walk", err, nil)
				}
				wantErr(t, "delete during walk", s.Anomalies().Delete(ctx, items[0].ID), nil)
				delete(original, items[0].ID)
				seen[items[0].ID+" (deleted)"] = 1
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("order %s: %s read %d times", order, id, n)
				}
			}
			for id := range original {
				if seen[id] != 1 {
					t.Errorf("order %s: %s read %d times, want once", order, id, seen[id])
				}
			}
		}
	})
}

func testPageLimits(t *testing.T, newHarness HarnessMaker) {
	t.Parallel()
	s, _ := openStore(t, newHarness)
	ctx := t.Context()
	const n = appdb.DefaultLimit + 5
	err := s.InTx(ctx, func(tx appdb.Tx) error {
		for i := range n {
			if _, err := tx.SystemState().Create(ctx, appdb.SystemState{Key: fmt.Sprintf("k%04d", i), Value: "v"}); err != nil {
				return err
			}
		}
		return nil
	})
	wantErr(t, "create", err, nil)
	tests := []struct {
		limit, want int
		more        bool
	}{
		{0, appdb.DefaultLimit, true},
		{1, 1, true},
		{n - 1, n - 1, true},
		{n, n, false},
		{appdb.MaxLimit, n, false},
	}
	for _, tt := range tests {
		items, next, err := s.SystemState().Find(ctx, appdb.SystemStateFilter{Page: appdb.Page{Limit: tt.limit}})
		wantErr(t, fmt.Sprintf("find limit %d", tt.limit), err, nil)
		if len(items) != tt.want || (next != "") != tt.more {
			t.Errorf("limit %d: got %d items, next %q; want %d items, more=%v", tt.limit, len(items), next, tt.want, tt.more)
		}
	}
	// A cursor is bound to its order.
	_, next, err := s.SystemState().Find(ctx, appdb.SystemStateFilter{Page: appdb.Page{Limit: 2}})
	wantErr(t, "find", err, nil)
	_, _, err = s.SystemState().Find(ctx, appdb.SystemStateFilter{Page: appdb.Page{Limit: 2, Order: appdb.Desc, Cursor: next}})
	wantErr(t, "find desc with asc cursor", err, appdb.ErrInvalid)
}

func testFindOthers(t *testing.T, newHarness HarnessMaker) {
	t.Run("Devices", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		devs := []appdb.Device{
			{ID: "dev-a1", Labels: map[string]string{"site": "north", "kind": "pump"}, LastSeen: base},
			{ID: "dev-a2", Labels: map[string]string{"site": "north", "kind": "fan"}, LastSeen: base.Add(time.Hour)},
			{ID: "dev-b1", Labels: map[string]string{"site": "south", "kind": "pump"}, LastSeen: base.Add(2 * time.Hour)},
			{ID: "gw-1"},
			{ID: "dev-ÿ"},
		}
		for _, d := range devs {
			_, err := s.Devices().Create(ctx, d)
			wantErr(t, "create "+d.ID, err, nil)
		}
		tests := []struct {
			name   string
			filter appdb.DeviceFilter
			want   []string
		}{
			{"all", appdb.DeviceFilter{}, []string{"dev-a1", "dev-a2", "dev-b1", "dev-ÿ", "gw-1"}},
			{"prefix", appdb.DeviceFilter{IDPrefix: "dev-"}, []string{"dev-a1", "dev-a2", "dev-b1", "dev-ÿ"}},
			{"prefix narrow", appdb.DeviceFilter{IDPrefix: "dev-a"}, []string{"dev-a1", "dev-a2"}},
			{"prefix whole id", appdb.DeviceFilter{IDPrefix: "gw-1"}, []string{"gw-1"}},
			{"prefix none", appdb.DeviceFilter{IDPrefix: "x"}, nil},
			{"label", appdb.DeviceFilter{Labels: map[string]string{"site": "north"}}, []string{"dev-a1", "dev-a2"}},
			{"labels", appdb.DeviceFilter{Labels: map[string]string{"site": "north", "kind": "pump"}}, []string{"dev-a1"}},
			{"last seen", appdb.DeviceFilter{LastSeen: appdb.TimeRange{From: base.Add(time.Minute)}}, []string{"dev-a2", "dev-b1"}},
			{"last seen to", appdb.DeviceFilter{LastSeen: appdb.TimeRange{To: base.Add(time.Hour)}}, []string{"dev-a1"}},
			{"desc", appdb.DeviceFilter{Page: appdb.Page{Order: appdb.Desc}}, []string{"gw-1", "dev-ÿ", "dev-b1", "dev-a2", "dev-a1"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 2, tt.filter.Order, func(p appdb.Page) ([]appdb.Device, string, error) {
				f := tt.filter
				f.Page = p
				return s.Devices().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, func(d appdb.Device) string { return d.ID }), tt.want)
		}
	})

	t.Run("DetectorConfigs", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		cfgs := []appdb.DetectorConfig{
			{ID: "c1", Detector: "mad", Scope: appdb.Scope{Kind: appdb.ScopeGlobal}, Enabled: true},
			{ID: "c2", Detector: "mad", Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "dev-1"}},
			{ID: "c3", Detector: "seasonal", Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "dev-1"}, Enabled: true},
			{ID: "c0", Detector: "threshold", Scope: appdb.Scope{Kind: appdb.ScopeSeries, Target: "dev-1"}, Enabled: true},
		}
		for _, c := range cfgs {
			e.clock.advance(time.Second)
			_, err := s.Detectors().Create(ctx, c)
			wantErr(t, "create "+c.ID, err, nil)
		}
		tests := []struct {
			name   string
			filter appdb.DetectorConfigFilter
			want   []string
		}{
			{"all by creation", appdb.DetectorConfigFilter{}, []string{"c1", "c2", "c3", "c0"}},
			{"desc", appdb.DetectorConfigFilter{Page: appdb.Page{Order: appdb.Desc}}, []string{"c0", "c3", "c2", "c1"}},
			{"detector", appdb.DetectorConfigFilter{Detector: "mad"}, []string{"c1", "c2"}},
			{"scope kind", appdb.DetectorConfigFilter{ScopeKind: appdb.ScopeDevice}, []string{"c2", "c3"}},
			{"target", appdb.DetectorConfigFilter{Target: "dev-1"}, []string{"c2", "c3", "c0"}},
			{"kind and target", appdb.DetectorConfigFilter{ScopeKind: appdb.ScopeDevice, Target: "dev-1"}, []string{"c2", "c3"}},
			{"enabled", appdb.DetectorConfigFilter{Enabled: ptr(true)}, []string{"c1", "c3", "c0"}},
			{"disabled", appdb.DetectorConfigFilter{Enabled: ptr(false)}, []string{"c2"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 1, tt.filter.Order, func(p appdb.Page) ([]appdb.DetectorConfig, string, error) {
				f := tt.filter
				f.Page = p
				return s.Detectors().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, func(c appdb.DetectorConfig) string { return c.ID }), tt.want)
		}
	})

	t.Run("MaintenanceWindows", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		h := func(n int) time.Time { return base.Add(time.Duration(n) * time.Hour) }
		ws := []appdb.MaintenanceWindow{
			{ID: "w1", Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "dev-1"}, Start: h(0), End: h(2)},
			{ID: "w2", Scope: appdb.Scope{Kind: appdb.ScopeDevice, Target: "dev-2"}, Start: h(1), End: h(3)},
			{ID: "w3", Scope: appdb.Scope{Kind: appdb.ScopeSelector, Selector: map[string]string{"site": "n"}}, Start: h(5), End: h(6)},
		}
		for _, w := range ws {
			_, err := s.Maintenance().Create(ctx, w)
			wantErr(t, "create "+w.ID, err, nil)
		}
		tests := []struct {
			name   string
			filter appdb.MaintenanceFilter
			want   []string
		}{
			{"all", appdb.MaintenanceFilter{}, []string{"w1", "w2", "w3"}},
			{"desc", appdb.MaintenanceFilter{Page: appdb.Page{Order: appdb.Desc}}, []string{"w3", "w2", "w1"}},
			{"target", appdb.MaintenanceFilter{Target: "dev-2"}, []string{"w2"}},
			{"kind", appdb.MaintenanceFilter{ScopeKind: appdb.ScopeSelector}, []string{"w3"}},
			{"active at start", appdb.MaintenanceFilter{ActiveAt: h(1)}, []string{"w1", "w2"}},
			{"active at end excluded", appdb.MaintenanceFilter{ActiveAt: h(2)}, []string{"w2"}},
			{"active nowhere", appdb.MaintenanceFilter{ActiveAt: h(4)}, nil},
			{"overlaps", appdb.MaintenanceFilter{Overlaps: appdb.TimeRange{From: h(2), To: h(5)}}, []string{"w2"}},
			{"overlaps open end", appdb.MaintenanceFilter{Overlaps: appdb.TimeRange{From: h(2)}}, []string{"w2", "w3"}},
			{"overlaps open start", appdb.MaintenanceFilter{Overlaps: appdb.TimeRange{To: h(1)}}, []string{"w1"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 2, tt.filter.Order, func(p appdb.Page) ([]appdb.MaintenanceWindow, string, error) {
				f := tt.filter
				f.Page = p
				return s.Maintenance().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, func(w appdb.MaintenanceWindow) string { return w.ID }), tt.want)
		}
	})

	t.Run("ModelMeta", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		ms := []appdb.ModelMeta{
			{Name: "b", ModelVersion: 1, Detector: "mad", Stage: appdb.StageArchived},
			{Name: "b", ModelVersion: 2, Detector: "mad", Stage: appdb.StageActive},
			{Name: "a", ModelVersion: 1, Detector: "seasonal", Stage: appdb.StageActive},
			{Name: "a", ModelVersion: 2, Detector: "seasonal"},
			{Name: "a", ModelVersion: 10, Detector: "seasonal"},
		}
		for _, m := range ms {
			_, err := s.Models().Create(ctx, m)
			wantErr(t, "create", err, nil)
		}
		id := func(m appdb.ModelMeta) string { return fmt.Sprintf("%s@%d", m.Name, m.ModelVersion) }
		tests := []struct {
			name   string
			filter appdb.ModelMetaFilter
			want   []string
		}{
			{"all", appdb.ModelMetaFilter{}, []string{"a@1", "b@1", "a@2", "b@2", "a@10"}},
			{"name desc", appdb.ModelMetaFilter{Name: "a", Page: appdb.Page{Order: appdb.Desc}}, []string{"a@10", "a@2", "a@1"}},
			{"stage", appdb.ModelMetaFilter{Stage: appdb.StageActive}, []string{"a@1", "b@2"}},
			{"candidates", appdb.ModelMetaFilter{Stage: appdb.StageCandidate}, []string{"a@2", "a@10"}},
			{"detector", appdb.ModelMetaFilter{Detector: "mad"}, []string{"b@1", "b@2"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 2, tt.filter.Order, func(p appdb.Page) ([]appdb.ModelMeta, string, error) {
				f := tt.filter
				f.Page = p
				return s.Models().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, id), tt.want)
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		toks := []appdb.APIToken{
			{ID: "t1", Role: appdb.RoleAdmin, SecretHash: hashOf("1")},
			{ID: "t2", Role: appdb.RoleRead, SecretHash: hashOf("2"), RevokedAt: base},
			{ID: "t3", Role: appdb.RoleRead, SecretHash: hashOf("3")},
		}
		for _, tok := range toks {
			e.clock.advance(time.Millisecond)
			_, err := s.Tokens().Create(ctx, tok)
			wantErr(t, "create", err, nil)
		}
		tests := []struct {
			name   string
			filter appdb.TokenFilter
			want   []string
		}{
			{"all", appdb.TokenFilter{}, []string{"t1", "t2", "t3"}},
			{"desc", appdb.TokenFilter{Page: appdb.Page{Order: appdb.Desc}}, []string{"t3", "t2", "t1"}},
			{"role", appdb.TokenFilter{Role: appdb.RoleRead}, []string{"t2", "t3"}},
			{"revoked", appdb.TokenFilter{Revoked: ptr(true)}, []string{"t2"}},
			{"live", appdb.TokenFilter{Revoked: ptr(false)}, []string{"t1", "t3"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 2, tt.filter.Order, func(p appdb.Page) ([]appdb.APIToken, string, error) {
				f := tt.filter
				f.Page = p
				return s.Tokens().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, func(t appdb.APIToken) string { return t.ID }), tt.want)
		}
	})

	t.Run("Outbox", func(t *testing.T) {
		t.Parallel()
		s, e := openStore(t, newHarness)
		ctx := t.Context()
		t0 := e.clock.now()
		msgs := []appdb.OutboxMessage{
			{ID: "m1", Topic: "anomalies", Key: "dev-1"},
			{ID: "m2", Topic: "anomalies", Key: "dev-2", DeliveredAt: base},
			{ID: "m3", Topic: "devices", Key: "dev-1"},
		}
		for _, m := range msgs {
			e.clock.advance(time.Second)
			_, err := s.Outbox().Create(ctx, m)
			wantErr(t, "create", err, nil)
		}
		tests := []struct {
			name   string
			filter appdb.OutboxFilter
			want   []string
		}{
			{"all", appdb.OutboxFilter{}, []string{"m1", "m2", "m3"}},
			{"desc", appdb.OutboxFilter{Page: appdb.Page{Order: appdb.Desc}}, []string{"m3", "m2", "m1"}},
			{"topic", appdb.OutboxFilter{Topic: "anomalies"}, []string{"m1", "m2"}},
			{"key", appdb.OutboxFilter{Key: "dev-1"}, []string{"m1", "m3"}},
			{"delivered", appdb.OutboxFilter{Delivered: ptr(true)}, []string{"m2"}},
			{"pending", appdb.OutboxFilter{Delivered: ptr(false)}, []string{"m1", "m3"}},
			{"created", appdb.OutboxFilter{Created: appdb.TimeRange{From: t0.Add(2 * time.Second), To: t0.Add(3 * time.Second)}}, []string{"m2"}},
		}
		for _, tt := range tests {
			got := walk(t, tt.name, 2, tt.filter.Order, func(p appdb.Page) ([]appdb.OutboxMessage, string, error) {
				f := tt.filter
				f.Page = p
				return s.Outbox().Find(ctx, f)
			})
			wantIDs(t, tt.name, idsOf(got, func(m appdb.OutboxMessage) string { return m.ID }), tt.want)
		}
	})

	t.Run("KeyPrefix", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, newHarness)
		ctx := t.Context()
		keys := []string{"a", "a,b", "ab", "aÿ", "b", "a%", "a_"}
		for _, k := range keys {
			_, err := s.Checkpoints().Put(ctx, appdb.Checkpoint{Key: k})
			wantErr(t, "put checkpoint", err, nil)
			_, err = s.SystemState().Put(ctx, appdb.SystemState{Key: k})
			wantErr(t, "put state", err, nil)
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a", "a%", "a,b", "a_", "ab", "aÿ", "b"}},
			{"a", []string{"a", "a%", "a,b", "a_", "ab", "aÿ"}},
			{"a,", []string{"a,b"}},
			{"a%", []string{"a%"}},
			{"a_", []string{"a_"}},
			{"aÿ", []string{"aÿ"}},
			{"c", nil},
		}
		for _, tt := range tests {
			got := walk(t, "checkpoints "+tt.prefix, 2, appdb.Asc, func(p appdb.Page) ([]appdb.Checkpoint, string, error) {
				return s.Checkpoints().Find(ctx, appdb.CheckpointFilter{KeyPrefix: tt.prefix, Page: p})
			})
			wantIDs(t, "checkpoints prefix "+tt.prefix, idsOf(got, func(c appdb.Checkpoint) string { return c.Key }), tt.want)
			gotS := walk(t, "state "+tt.prefix, 3, appdb.Desc, func(p appdb.Page) ([]appdb.SystemState, string, error) {
				return s.SystemState().Find(ctx, appdb.SystemStateFilter{KeyPrefix: tt.prefix, Page: p})
			})
			wantIDs(t, "state prefix "+tt.prefix, idsOf(gotS, func(v appdb.SystemState) string { return v.Key }), reversed(tt.want))
		}
	})
}
