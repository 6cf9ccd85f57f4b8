package embedts_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
	"github.com/vigil-iot/vigil/internal/timeseries/embedts"
	"github.com/vigil-iot/vigil/internal/timeseries/timeseriestest"
)

const childEnv = "VIGIL_EMBEDTS_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	goleak.VerifyTestMain(m)
}

// harness opens an embedded store in one temporary directory.
type harness struct {
	dir  string
	opts embedts.Options
}

func newHarness(tb testing.TB) timeseriestest.Harness {
	return &harness{dir: tb.TempDir()}
}

func (h *harness) Open(context.Context) (timeseries.Repository, error) {
	return embedts.Open(h.dir, h.opts)
}

func (h *harness) Capabilities() timeseriestest.Capabilities {
	return timeseriestest.Capabilities{
		OutOfOrderWindow: embedts.DefaultOutOfOrderWindow,
		MaxFutureSkew:    embedts.DefaultMaxFutureSkew,
		Precision:        time.Millisecond,
	}
}

func TestConformance(t *testing.T) {
	timeseriestest.RunConformanceTests(t, newHarness)
}

func open(t *testing.T, dir string, opts embedts.Options) *embedts.Store {
	t.Helper()
	s, err := embedts.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b) }),
	cmpopts.EquateEmpty(),
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, embedts.Options{})
	s, err := embedts.Open(dir, embedts.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("second Open(%q) succeeded, want ErrLocked", dir)
	}
	if !errors.Is(err, embedts.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second Open(%q) = %v, want ErrLocked naming the directory", dir, err)
	}
}

func TestInvalidTags(t *testing.T) {
	s := open(t, t.TempDir(), embedts.Options{})
	now := time.Now().UnixMilli()
	tests := []struct {
		name string
		tags telemetry.Tags
	}{
		{"empty key", telemetry.Tags{{Key: "", Value: "x"}}},
		{"empty value", telemetry.Tags{{Key: "device", Value: ""}}},
		{"duplicate key", telemetry.Tags{{Key: "device", Value: "a"}, {Key: "device", Value: "b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := telemetry.Point{Series: telemetry.Series{Measurement: "m", Tags: tc.tags, Field: "v"}, Time: now, Value: 1}
			if err := s.WritePoints(t.Context(), []telemetry.Point{p}); !errors.Is(err, timeseries.ErrInvalid) {
				t.Errorf("WritePoints(tags %v) = %v, want ErrInvalid", tc.tags, err)
			}
		})
	}
}

// TestReservedTagNames checks that user tags named like the reserved labels
// neither collide with them nor with each other.
func TestReservedTagNames(t *testing.T) {
	s := open(t, t.TempDir(), embedts.Options{})
	now := time.Now().UnixMilli()
	series := []telemetry.Series{
		telemetry.NewSeries("m", telemetry.Tags{{Key: "__name__", Value: "evil"}, {Key: "__field__", Value: "evil"}}, "v"),
		telemetry.NewSeries("m", telemetry.Tags{{Key: "_name__", Value: "evil"}}, "v"),
		telemetry.NewSeries("m", telemetry.Tags{{Key: "_u_x", Value: "1"}}, "v"),
		telemetry.NewSeries("m", telemetry.Tags{{Key: "_x", Value: "1"}}, "v"),
		telemetry.NewSeries("m", telemetry.Tags{{Key: "ux", Value: "1"}}, "v"),
	}
	var pts []telemetry.Point
	var want []timeseries.SeriesSamples
	for i, sr := range series {
		pts = append(pts, telemetry.Point{Series: sr, Time: now - int64(i), Value: float64(i)})
	}
	if err := s.WritePoints(t.Context(), pts); err != nil {
		t.Fatalf("WritePoints: %v", err)
	}
	for _, p := range pts {
		want = append(want, timeseries.SeriesSamples{Series: p.Series, Samples: []timeseries.Sample{{Time: p.Time, Value: p.Value}}})
	}
	slicesSortByKey(want)
	got, err := s.QueryRange(t.Context(), timeseries.Selector{Measurement: "m"}, timeseries.Range{Start: now - 10, End: now + 1})
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange (-want +got):\n%s", diff)
	}
	got, err = s.QueryRange(t.Context(), timeseries.Selector{Tags: []timeseries.Matcher{{Key: "__name__", Op: timeseries.MatchEqual, Value: "evil"}}}, timeseries.Range{Start: now - 10, End: now + 1})
	if err != nil {
		t.Fatalf("QueryRange(__name__ tag): %v", err)
	}
	if len(got) != 1 || got[0].Series.Key() != series[0].Key() {
		t.Errorf("QueryRange(tag __name__=evil) = %v, want only %s", got, series[0].Key())
	}
}

func slicesSortByKey(ss []timeseries.SeriesSamples) {
	for i := range ss {
		for j := i + 1; j < len(ss); j++ {
			if ss[j].Series.Key() < ss[i].Series.Key() {
				ss[i], ss[j] = ss[j], ss[i]
			}
		}
	}
}

// TestConflictAcrossCompaction checks the first-write-wins rule against data
// that the library has moved from the head into a block (where it would
// accept any value at an old timestamp as out-of-order) and after DeleteBefore
// really removed data from blocks.
func TestConflictAcrossCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, embedts.Options{})
	sr := telemetry.NewSeries("m", telemetry.Tags{{Key: "device", Value: "d"}}, "v")
	base := time.Now().Add(-20 * time.Hour).Truncate(time.Hour).UnixMilli()
	var pts []telemetry.Point
	for i := range 600 {
		pts = append(pts, telemetry.Point{Series: sr, Time: base + int64(i)*60_000, Value: float64(i) / 4})
	}
	if err := s.WritePoints(t.Context(), pts); err != nil {
		t.Fatalf("WritePoints: %v", err)
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if n, err := s.BlockBytes(); err != nil || n == 0 {
		t.Fatalf("BlockBytes after Compact = %d, %v; want > 0", n, err)
	}
	r := timeseries.Range{Start: base, End: base + 600*60_000}
	check := func(when string, want []telemetry.Point) {
		t.Helper()
		got, err := s.QueryRange(t.Context(), timeseries.Selector{Measurement: "m"}, r)
		if err != nil {
			t.Fatalf("QueryRange %s: %v", when, err)
		}
		var samples []timeseries.Sample
		for _, p := range want {
			samples = append(samples, timeseries.Sample{Time: p.Time, Value: p.Value})
		}
		if diff := cmp.Diff([]timeseries.SeriesSamples{{Series: sr, Samples: samples}}, got, cmpOpts...); diff != "" {
			t.Errorf("QueryRange %s (-want +got):\n%s", when, diff)
		}
	}
	bad := []telemetry.Point{{Series: sr, Time: pts[10].Time, Value: -1}, pts[11], {Series: sr, Time: pts[599].Time, Value: -1}}
	err := s.WritePoints(t.Context(), bad)
	var pe *timeseries.PartialWriteError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || pe.Failed[0].Index != 0 || pe.Failed[1].Index != 2 || !errors.Is(err, timeseries.ErrConflict) {
		t.Fatalf("WritePoints(conflicts with compacted data) = %v, want ErrConflict for points 0 and 2", err)
	}
	check("after conflicting rewrite of compacted data", pts)

	cutoff := pts[300].Time
	if err := s.DeleteBefore(t.Context(), cutoff); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	check("after DeleteBefore", pts[300:])
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir, embedts.Options{})
	check("after DeleteBefore and reopen", pts[300:])
	err = s.WritePoints(t.Context(), []telemetry.Point{{Series: sr, Time: pts[400].Time, Value: -1}})
	if !errors.Is(err, timeseries.ErrConflict) {
		t.Errorf("WritePoints(conflict after reopen) = %v, want ErrConflict", err)
	}
}

// TestInjectedClock checks that the window follows Options.Now.
func TestInjectedClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, t.TempDir(), embedts.Options{Now: func() time.Time { return now }, OutOfOrderWindow: time.Hour, MaxFutureSkew: time.Minute})
	sr := telemetry.NewSeries("m", nil, "v")
	pts := []telemetry.Point{
		{Series: sr, Time: now.Add(-59 * time.Minute).UnixMilli(), Value: 1},
		{Series: sr, Time: now.Add(-61 * time.Minute).UnixMilli(), Value: 2},
		{Series: sr, Time: now.Add(59 * time.Second).UnixMilli(), Value: 3},
		{Series: sr, Time: now.Add(61 * time.Second).UnixMilli(), Value: 4},
	}
	err := s.WritePoints(t.Context(), pts)
	var pe *timeseries.PartialWriteError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || pe.Failed[0].Index != 1 || pe.Failed[1].Index != 3 || !errors.Is(err, timeseries.ErrOutOfWindow) {
		t.Fatalf("WritePoints = %v, want ErrOutOfWindow for points 1 and 3", err)
	}
}

// crashChild is the child process of TestCrashDurability: it writes batches
// and prints "ack N" after each WritePoints returned, until it is killed.
func crashChild(dir string) int {
	base, err := strconv.ParseInt(os.Getenv("VIGIL_EMBEDTS_CRASH_BASE"), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad base:", err)
		return 2
	}
	s, err := embedts.Open(dir, embedts.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	n := 0
	for batch := 0; ; batch++ {
		pts := crashBatch(base, batch)
		if batch%2 == 1 {
			// Newest first: most of the batch goes to the out-of-order
			// head, logged in the WBL rather than the WAL.
			slices.Reverse(pts)
		}
		if err := s.WritePoints(context.Background(), pts); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			return 2
		}
		n += len(pts)
		fmt.Fprintf(w, "ack %d\n", n)
		w.Flush()
		if batch > 100000 {
			return 3 // the parent should have killed us long ago
		}
	}
}

const crashSeries, crashBatchSize = 50, 200

func crashBatch(base int64, batch int) []telemetry.Point {
	pts := make([]telemetry.Point, crashBatchSize)
	for i := range pts {
		n := batch*crashBatchSize + i
		sr := telemetry.NewSeries("crash", telemetry.Tags{{Key: "device", Value: strconv.Itoa(n % crashSeries)}}, "v")
		pts[i] = telemetry.Point{Series: sr, Time: base + int64(n/crashSeries)*100, Value: float64(n)*0.01 + 0.001}
	}
	return pts
}

// TestCrashDurability kills (SIGKILL) a process that writes points and checks
// that every point it acknowledged is in the store after reopening.
func TestCrashDurability(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour).UnixMilli()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, "VIGIL_EMBEDTS_CRASH_BASE="+strconv.FormatInt(base, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	const want = 20000
	acked := 0
	sc := bufio.NewScanner(out)
	for acked < want && sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack "))
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked = n
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
			acked = n // acknowledged before the signal landed
		}
	}
	_ = cmd.Wait()
	if acked < want {
		t.Fatalf("child acknowledged %d points before exiting, want at least %d", acked, want)
	}

	s := open(t, dir, embedts.Options{})
	got, err := s.QueryRange(t.Context(), timeseries.Selector{Measurement: "crash"}, timeseries.Range{Start: base, End: base + int64(acked)*100})
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	stored := map[string]map[int64]float64{}
	for _, ss := range got {
		m := map[int64]float64{}
		for _, smp := range ss.Samples {
			m[smp.Time] = smp.Value
		}
		stored[ss.Series.Key()] = m
	}
	missing := 0
	for batch := 0; batch*crashBatchSize < acked; batch++ {
		for _, p := range crashBatch(base, batch) {
			v, ok := stored[p.Series.Key()][p.Time]
			if !ok || math.Float64bits(v) != math.Float64bits(p.Value) {
				if missing < 5 {
					t.Errorf("acknowledged point %s @ %d = %v: got %v (present %v)", p.Series.Key(), p.Time, p.Value, v, ok)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged points lost after SIGKILL", missing, acked)
	}
}

// TestSyncWrites checks the fsync path (Options.SyncWrites) writes and reads
// back across a reopen.
func TestSyncWrites(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, embedts.Options{SyncWrites: true})
	sr := telemetry.NewSeries("m", nil, "v")
	now := time.Now().UnixMilli()
	pts := []telemetry.Point{{Series: sr, Time: now - 2000, Value: 1.25}, {Series: sr, Time: now - 1000, Value: 2.5}}
	if err := s.WritePoints(t.Context(), pts); err != nil {
		t.Fatalf("WritePoints: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir, embedts.Options{})
	got, err := s.QueryRange(t.Context(), timeseries.Selector{Measurement: "m"}, timeseries.Range{Start: now - 5000, End: now})
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	want := []timeseries.SeriesSamples{{Series: sr, Samples: []timeseries.Sample{{Time: now - 2000, Value: 1.25}, {Time: now - 1000, Value: 2.5}}}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("QueryRange after SyncWrites and reopen (-want +got):\n%s", diff)
	}
}
