package detect

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const t0 = int64(1_767_225_600_000) // 2026-01-01T00:00:00Z
const step = int64(60_000)          // one minute

// noisy returns n readings of level + Gaussian noise of sd 1, deterministic.
func noisy(seed uint64, n int, level float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = level + rng.NormFloat64()
	}
	return v
}

// firstAlarm feeds v at one-minute steps and returns the index and result of
// the first alarm at or after from, and the number of alarms before from.
func firstAlarm(e *Ensemble, v []float64, from int) (int, Result, int) {
	before := 0
	for i, x := range v {
		r := e.Update(t0+int64(i)*step, x)
		if !r.Anomaly {
			continue
		}
		if i < from {
			before++
			continue
		}
		return i, r, before
	}
	return -1, Result{}, before
}

func TestEnsembleDetectors(t *testing.T) {
	const n, at = 3000, 2000
	fMin, fMax := 90.0, 110.0
	tests := []struct {
		name   string
		cfg    func(*Config)
		mutate func(v []float64)
		want   string // a detector that must be listed
		within int    // readings after the fault start
	}{
		{"spike", nil, func(v []float64) { v[at] += 15 }, DetSpike, 1},
		{"level shift", nil, func(v []float64) {
			for i := at; i < len(v); i++ {
				v[i] += 5
			}
		}, "", 30},
		{"drift", nil, func(v []float64) {
			for i := at; i < len(v); i++ {
				v[i] += 0.02 * float64(i-at)
			}
		}, "", 400},
		{"variance burst", nil, func(v []float64) {
			rng := rand.New(rand.NewPCG(9, 9))
			for i := at; i < at+60; i++ {
				v[i] += 6 * rng.NormFloat64()
			}
		}, "", 60},
		{"stuck", nil, func(v []float64) {
			for i := at; i < at+200; i++ {
				v[i] = v[at]
			}
		}, DetFlat, 60},
		{"rule max", func(c *Config) { c.Rules.Min, c.Rules.Max = &fMin, &fMax }, func(v []float64) { v[at] = 111 }, DetRule, 1},
		{"rate", func(c *Config) { c.Rules.MaxRate = 0.15 }, func(v []float64) { v[at] += 15 }, DetRule, 1},
		{"breakout", nil, func(v []float64) {
			for i := at; i < at+50; i++ {
				v[i] += 12
			}
		}, DetBreakout, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			v := noisy(42, n, 100)
			tt.mutate(v)
			i, r, before := firstAlarm(NewEnsemble(cfg), v, at)
			if before > 0 {
				t.Errorf("%d alarms before the fault, want 0", before)
			}
			if i < 0 || i > at+tt.within {
				t.Fatalf("first alarm at %d, want in [%d, %d]", i, at, at+tt.within)
			}
			if tt.want != "" && !slices.Contains(r.Detectors, tt.want) {
				t.Errorf("detectors %v, want %q among them", r.Detectors, tt.want)
			}
			if r.Score < cfg.Threshold || r.Score > 1 || r.Severity == SeverityNone {
				t.Errorf("alarm score %v severity %v, want >= %v and a severity", r.Score, r.Severity, cfg.Threshold)
			}
		})
	}
}

func TestEnsembleNoData(t *testing.T) {
	e := NewEnsemble(DefaultConfig())
	v := noisy(1, 1000, 10)
	for i, x := range v {
		e.Update(t0+int64(i)*step, x)
	}
	last := t0 + 999*step
	if _, ok := e.Silent(last + 5*step); ok {
		t.Errorf("Silent after 5 intervals: got a no-data signal, want none")
	}
	r, ok := e.Silent(last + 30*step)
	if !ok || !r.NoData || !r.Anomaly || !slices.Equal(r.Detectors, []string{DetNoData}) {
		t.Fatalf("Silent after 30 intervals = %+v, %v; want a no-data anomaly", r, ok)
	}
	if _, ok := e.Silent(last + 40*step); ok {
		t.Errorf("Silent reported the same silence twice")
	}
	// A reading after a gap that was not polled reports the gap itself.
	e2 := NewEnsemble(DefaultConfig())
	for i, x := range v {
		e2.Update(t0+int64(i)*step, x)
	}
	r = e2.Update(last+60*step, 10)
	if !r.Anomaly || !slices.Contains(r.Detectors, DetNoData) {
		t.Errorf("reading after a 60-interval gap = %+v, want a nodata anomaly", r)
	}
	// Missing values change nothing.
	before, _ := e2.MarshalBinary()
	if r := e2.Update(last+61*step, math.NaN()); r.Anomaly || r.Score != 0 {
		t.Errorf("NaN reading = %+v, want a zero result", r)
	}
	after, _ := e2.MarshalBinary()
	if !slices.Equal(before, after) {
		t.Errorf("NaN reading changed the state")
	}
}

func TestEnsembleIrregularAndDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ts := make([]int64, 5000)
	vs := make([]float64, len(ts))
	tm := t0
	for i := range ts {
		tm += 1000 + rng.Int64N(120_000) // 1 s to 2 min apart
		ts[i] = tm
		vs[i] = 50 + 5*math.Sin(float64(i)/100) + rng.NormFloat64()
	}
	run := func() []Result {
		e := NewEnsemble(DefaultConfig())
		out := make([]Result, len(ts))
		for i := range ts {
			out[i] = e.Update(ts[i], vs[i])
		}
		return out
	}
	a, b := run(), run()
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("two runs on the same input differ (-first +second):\n%s", diff)
	}
	for i, r := range a {
		if r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score) {
			t.Fatalf("reading %d: score %v outside [0, 1]", i, r.Score)
		}
	}
}

func TestQuietSeasonalSeries(t *testing.T) {
	// Two weeks of a noisy daily pattern at five-minute readings.
	s := genSeries(77, baseSeasonal, 14*288, nil)
	e := NewEnsemble(DefaultConfig())
	alarms := 0
	for i := range s.t {
		if e.Update(s.t[i], s.v[i]).Anomaly {
			alarms++
		}
	}
	if alarms > 1 {
		t.Errorf("clean seasonal series: %d alarms in %d readings, want <= 1", alarms, len(s.t))
	}
}

func TestEnsembleRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	v := noisy(3, 4000, 20)
	for i := 3000; i < 3100; i++ {
		v[i] += 8
	}
	for _, cut := range []int{0, 1, 50, 149, 150, 151, 1000, 3050} {
		e := NewEnsemble(cfg)
		for i := range cut {
			e.Update(t0+int64(i)*step, v[i])
		}
		data, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		r := NewEnsemble(cfg)
		if err := r.UnmarshalBinary(data); err != nil {
			t.Fatalf("cut %d: unmarshal: %v", cut, err)
		}
		for i := cut; i < len(v); i++ {
			tm := t0 + int64(i)*step
			got, want := r.Update(tm, v[i]), e.Update(tm, v[i])
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("cut %d, reading %d: restored detector differs (-orig +restored):\n%s", cut, i, diff)
			}
		}
	}
}

// TestEnsembleIrregularGaps feeds a bursty series (most readings seconds
// apart, one in ten after minutes of silence): its long silences are normal
// and must stop raising no-data alarms once seen, while a silence far
// beyond them still does.
func TestEnsembleIrregularGaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	e := NewEnsemble(DefaultConfig())
	ts := t0
	gaps := 0
	for i := range 20000 {
		if rng.IntN(10) == 0 {
			ts += int64(60_000 + rng.IntN(240_000))
		} else {
			ts += int64(1000 + rng.IntN(4000))
		}
		r := e.Update(ts, 10+rng.NormFloat64())
		if i > 2000 && slices.Contains(r.Detectors, DetNoData) {
			gaps++
		}
	}
	if gaps > 0 {
		t.Errorf("%d no-data alarms on normal silences after the first 2000 readings, want 0", gaps)
	}
	if r := e.Update(ts+3_600_000, 10); !slices.Contains(r.Detectors, DetNoData) {
		t.Errorf("reading after an hour of silence = %+v, want a no-data anomaly", r)
	}
}

func TestEnsembleBadState(t *testing.T) {
	e := NewEnsemble(DefaultConfig())
	for i, x := range noisy(4, 500, 1) {
		e.Update(t0+int64(i)*step, x)
	}
	data, _ := e.MarshalBinary()
	for _, n := range []int{0, 1, 3, 10, len(data) / 2, len(data) - 1} {
		if err := NewEnsemble(DefaultConfig()).UnmarshalBinary(data[:n]); !errors.Is(err, ErrBadState) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrBadState", n, err)
		}
	}
	for _, v := range []byte{1, ensembleVersion + 1, 99} { // 1: before the learned gap limit
		bad := slices.Clone(data)
		bad[2] = v
		if err := NewEnsemble(DefaultConfig()).UnmarshalBinary(bad); !errors.Is(err, ErrBadState) {
			t.Errorf("version %d: err = %v, want ErrBadState", v, err)
		}
	}
	if err := NewEnsemble(DefaultConfig()).UnmarshalBinary(append(slices.Clone(data), 0)); !errors.Is(err, ErrBadState) {
		t.Errorf("trailing byte: err = %v, want ErrBadState", err)
	}
	noSeason := DefaultConfig()
	noSeason.Seasonal = false
	if err := NewEnsemble(noSeason).UnmarshalBinary(data); !errors.Is(err, ErrBadState) {
		t.Errorf("seasonal state into a non-seasonal detector: err = %v, want ErrBadState", err)
	}
}

func TestStateBounded(t *testing.T) {
	e := NewEnsemble(DefaultConfig())
	v := noisy(6, 100_000, 5)
	sizes := map[int]int{}
	for i, x := range v {
		e.Update(t0+int64(i)*step, x)
		if i == 1000 || i == len(v)-1 {
			sizes[i] = e.StateSize()
		}
	}
	if sizes[1000] != sizes[len(v)-1] {
		t.Errorf("state grew from %d bytes at 1000 readings to %d at 100000", sizes[1000], sizes[len(v)-1])
	}
	if sizes[1000] > 6000 {
		t.Errorf("state is %d bytes, want <= 6000", sizes[1000])
	}

	d := NewDeviceDetector(DefaultDeviceConfig(), devSensors)
	s := genDevice(8, 20000, nil)
	var at1k int
	for i := range s.t {
		d.Update(s.t[i], s.rows[i])
		if i == 1000 {
			at1k = d.StateSize()
		}
	}
	if end := d.StateSize(); end != at1k || end > 4096 {
		t.Errorf("device state %d bytes at 1000 rows, %d at 20000; want equal and <= 4096", at1k, end)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
	if err := DefaultDeviceConfig().Validate(); err != nil {
		t.Errorf("DefaultDeviceConfig().Validate() = %v, want nil", err)
	}
	c := DefaultConfig()
	c.Warmup, c.Threshold, c.LikelihoodAvg = 1, 2, 0
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: err = %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"warmup", "threshold", "likelihood_avg"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

// TestEnsembleRestRearms: a run of anomalous readings is one alarm, but a
// second, distinct excursion after the series has been quiet again for a
// third of the rest period is a new alarm, even inside the rest period.
func TestEnsembleRestRearms(t *testing.T) {
	cfg := DefaultConfig()
	v := noisy(21, 2000, 10)
	for i := 1000; i < 1010; i++ { // first dip
		v[i] -= 20
	}
	for i := 1090; i < 1100; i++ { // a second one, 80 readings later
		v[i] -= 20
	}
	for i := 1500; i < 1580; i++ { // one long excursion
		v[i] -= 20
	}
	e := NewEnsemble(cfg)
	var alarms []int
	for i, x := range v {
		if e.Update(t0+int64(i)*step, x).Anomaly {
			alarms = append(alarms, i)
		}
	}
	in := func(lo, hi int) (n int) {
		for _, a := range alarms {
			if a >= lo && a < hi {
				n++
			}
		}
		return n
	}
	if in(1000, 1010) != 1 || in(1090, 1100) != 1 {
		t.Errorf("alarms %v: want one in each dip (1000..1009, 1090..1099)", alarms)
	}
	if n := in(1500, 1580+cfg.Rest); n != 1 {
		t.Errorf("alarms %v: %d in the long excursion from 1500 and its rest, want 1", alarms, n)
	}
	if n := len(alarms) - in(1000, 1010) - in(1090, 1100) - in(1500, 1580+cfg.Rest); n != 0 {
		t.Errorf("alarms %v: %d outside the dips, want 0", alarms, n)
	}
}
