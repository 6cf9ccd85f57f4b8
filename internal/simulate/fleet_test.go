package simulate

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

func collect(t *testing.T, cfg Config) []Reading {
	t.Helper()
	fl, err := NewFleet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Collect(fl.Readings())
}

func TestDeterminism(t *testing.T) {
	devs := NewDevices(3, 4, 5, time.Minute)
	end := start.Add(2 * 24 * time.Hour)
	faults, err := PlanFaults(3, devs, start, end, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Seed: 42, Start: start, End: end, Devices: devs, Faults: faults}
	a, b := collect(t, cfg), collect(t, cfg)
	if i := firstDiff(a, b); i >= 0 {
		t.Errorf("same config, different readings from %d: %+v vs %+v", i, a[min(i, len(a)-1)], b[min(i, len(b)-1)])
	}
	faults2, _ := PlanFaults(3, devs, start, end, 3, nil)
	if diff := cmp.Diff(faults, faults2); diff != "" {
		t.Errorf("same seed, different fault plans:\n%s", diff)
	}
	cfg.Seed = 43
	if c := collect(t, cfg); firstDiff(a, c) < 0 {
		t.Errorf("seeds 42 and 43 gave identical readings")
	}
}

// firstDiff returns the index of the first differing reading, or -1.
func firstDiff(a, b []Reading) int {
	for i := range min(len(a), len(b)) {
		if a[i].Device != b[i].Device || a[i].Time != b[i].Time || !slices.Equal(a[i].Fields, b[i].Fields) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestReadingsOrderAndSampling(t *testing.T) {
	devs := NewDevices(1, 3, 2, 10*time.Second)
	rs := collect(t, Config{Seed: 1, Start: start, End: start.Add(24 * time.Hour), Devices: devs})
	last := map[string]int64{}
	var deltas []float64
	for i, r := range rs {
		if i > 0 && r.Time < rs[i-1].Time {
			t.Fatalf("reading %d at %d before previous at %d", i, r.Time, rs[i-1].Time)
		}
		if r.Time < start.UnixMilli() || r.Time >= start.Add(24*time.Hour).UnixMilli() {
			t.Fatalf("reading %d at %d outside [start, end)", i, r.Time)
		}
		if p, ok := last[r.Device]; ok {
			deltas = append(deltas, float64(r.Time-p))
		}
		last[r.Device] = r.Time
	}
	want := 3 * 24 * 360
	if len(rs) < want*98/100 || len(rs) > want {
		t.Errorf("%d readings, want about %d (a few lost)", len(rs), want)
	}
	slices.Sort(deltas)
	if deltas[0] == deltas[len(deltas)/2] {
		t.Errorf("sampling not jittered: min interval %v = median", deltas[0])
	}
	if deltas[len(deltas)-1] < 20_000 {
		t.Errorf("no gaps: longest interval %v ms", deltas[len(deltas)-1])
	}
	if med := deltas[len(deltas)/2]; math.Abs(med-10_000) > 500 {
		t.Errorf("median interval %v ms, want about 10000", med)
	}
}

// sensorValues returns the times and values of one sensor of one device.
func sensorValues(rs []Reading, device, sensor string) (ts []int64, vs []float64) {
	for _, r := range rs {
		if r.Device != device {
			continue
		}
		for _, f := range r.Fields {
			if f.Name == sensor {
				ts, vs = append(ts, r.Time), append(vs, f.Value)
			}
		}
	}
	return ts, vs
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func corr(a, b []float64) float64 {
	ma, mb := mean(a), mean(b)
	var sab, saa, sbb float64
	for i := range a {
		sab += (a[i] - ma) * (b[i] - mb)
		saa += (a[i] - ma) * (a[i] - ma)
		sbb += (b[i] - mb) * (b[i] - mb)
	}
	return sab / math.Sqrt(saa*sbb)
}

func TestRealism(t *testing.T) {
	cat := Catalogue()
	dev := Device{ID: "d", Sensors: cat[:3], Interval: 5 * time.Minute, Jitter: 0.1}
	rs := collect(t, Config{Seed: 9, Start: start, End: start.Add(28 * 24 * time.Hour), Devices: []Device{dev}})
	ts, temp := sensorValues(rs, "d", "temperature")
	_, hum := sensorValues(rs, "d", "humidity")
	_, pow := sensorValues(rs, "d", "power")
	if len(temp) != len(rs) || len(hum) != len(rs) || len(pow) != len(rs) {
		t.Fatalf("sensors missing from readings: %d %d %d of %d", len(temp), len(hum), len(pow), len(rs))
	}

	t.Run("daily cycle", func(t *testing.T) {
		// Mean by hour of day: afternoon warmer than night, by more than
		// the noise.
		var byHour [24][]float64
		for i, ms := range ts {
			h := time.UnixMilli(ms).UTC().Hour()
			byHour[h] = append(byHour[h], temp[i])
		}
		afternoon, night := mean(byHour[15]), mean(byHour[4])
		if afternoon-night < 1.5 {
			t.Errorf("temperature 15h %.2f, 4h %.2f: want a daily cycle of at least 1.5", afternoon, night)
		}
	})
	t.Run("weekly cycle", func(t *testing.T) {
		var weekday, weekend []float64
		for i, ms := range ts {
			tm := time.UnixMilli(ms).UTC()
			if tm.Hour() < 10 || tm.Hour() > 16 {
				continue
			}
			if d := tm.Weekday(); d == time.Saturday || d == time.Sunday {
				weekend = append(weekend, pow[i])
			} else {
				weekday = append(weekday, pow[i])
			}
		}
		if mean(weekday)-mean(weekend) < 300 {
			t.Errorf("power at midday: weekday %.0f, weekend %.0f: want weekday load much higher", mean(weekday), mean(weekend))
		}
	})
	t.Run("correlated sensors", func(t *testing.T) {
		if c := corr(temp, hum); c > -0.5 {
			t.Errorf("corr(temperature, humidity) = %.2f, want < -0.5", c)
		}
		if c := corr(temp, pow); c < 0.3 {
			t.Errorf("corr(temperature, power) = %.2f, want > 0.3", c)
		}
	})
	t.Run("noise and resolution", func(t *testing.T) {
		// At 1 s sampling the drivers barely move between readings: the
		// spread of successive differences is the noise, √2·σ.
		dev := Device{ID: "n", Sensors: cat[:1], Interval: time.Second}
		rs := collect(t, Config{Seed: 2, Start: start, End: start.Add(time.Hour), Devices: []Device{dev}})
		_, v := sensorValues(rs, "n", "temperature")
		var d []float64
		for i := 1; i < len(v); i++ {
			d = append(d, v[i]-v[i-1])
		}
		sd := math.Sqrt(mean(func() []float64 {
			sq := make([]float64, len(d))
			for i, x := range d {
				sq[i] = x * x
			}
			return sq
		}()))
		if want := math.Sqrt2 * cat[0].Noise; math.Abs(sd-want) > 0.15*want {
			t.Errorf("successive-difference sd %.4f, want about %.4f", sd, want)
		}
		for _, x := range v {
			if s := strconv.FormatFloat(x, 'f', -1, 64); len(s) > 0 && x != math.Round(x*100)/100 {
				t.Fatalf("value %s has more than 2 decimals", s)
			}
		}
	})
}

// TestFaultsConfined checks that each fault kind changes readings in its
// window, in the way its kind says, and nowhere else (persistent kinds also
// after the window).
func TestFaultsConfined(t *testing.T) {
	dev := Device{ID: "d", Sensors: Catalogue()[:3], Interval: time.Minute, Jitter: 0.2, GapRate: 0.001}
	end := start.Add(6 * 24 * time.Hour)
	fs := start.Add(3 * 24 * time.Hour)
	clean := collect(t, Config{Seed: 5, Start: start, End: end, Devices: []Device{dev}})
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			dur := 3 * time.Hour
			if k == SeasonalBreak {
				dur = 24 * time.Hour
			}
			f := Fault{Device: "d", Sensors: []string{"humidity"}, Kind: k, Start: fs, End: fs.Add(dur)}
			got := collect(t, Config{Seed: 5, Start: start, End: end, Devices: []Device{dev}, Faults: []Fault{f}})
			ct, cv := sensorValues(clean, "d", "humidity")
			gt, gv := sensorValues(got, "d", "humidity")
			in := func(ms int64) bool { return ms >= fs.UnixMilli() && ms < fs.Add(dur).UnixMilli() }
			for _, s := range []string{"temperature", "power"} {
				_, a := sensorValues(clean, "d", s)
				_, b := sensorValues(got, "d", s)
				if !slices.Equal(a, b) {
					t.Errorf("sensor %s changed by a fault on humidity", s)
				}
			}
			if k == Dropout {
				for _, ms := range gt {
					if in(ms) {
						t.Fatalf("humidity reading at %v inside the dropout", time.UnixMilli(ms).UTC())
					}
				}
				if len(gt) >= len(ct)-150 {
					t.Errorf("%d readings with a 3h dropout at 1/min, clean %d", len(gt), len(ct))
				}
				return
			}
			if !slices.Equal(ct, gt) {
				t.Fatalf("timestamps changed by a %s fault", k)
			}
			var inside []float64
			changed := 0
			for i, ms := range ct {
				if in(ms) {
					inside = append(inside, gv[i])
					if gv[i] != cv[i] {
						changed++
					}
					continue
				}
				after := ms >= fs.Add(dur).UnixMilli()
				if gv[i] != cv[i] && !(k.Persistent() && after) {
					t.Fatalf("value at %v changed outside the window: %v, clean %v", time.UnixMilli(ms).UTC(), gv[i], cv[i])
				}
				if k.Persistent() && after && gv[i] == cv[i] {
					t.Fatalf("persistent %s gone at %v", k, time.UnixMilli(ms).UTC())
				}
			}
			if changed < len(inside)/2 {
				t.Errorf("only %d of %d readings in the window changed", changed, len(inside))
			}
			if k == Stuck {
				for _, v := range inside {
					if v != inside[0] {
						t.Fatalf("stuck sensor moved: %v then %v", inside[0], v)
					}
				}
			}
		})
	}
}

func TestNewFleetInvalid(t *testing.T) {
	ok := Device{ID: "d", Sensors: Catalogue()[:1], Interval: time.Second}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"end before start", Config{Start: start, End: start, Devices: []Device{ok}}},
		{"duplicate device", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{ok, ok}}},
		{"tiny interval", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{{ID: "x", Sensors: Catalogue()[:1], Interval: time.Millisecond}}}},
		{"big jitter", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{{ID: "x", Sensors: Catalogue()[:1], Interval: time.Second, Jitter: 0.9}}}},
		{"unknown fault device", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{ok}, Faults: []Fault{{Device: "y", Sensors: []string{"temperature"}, Kind: Spike, Start: start, End: start.Add(time.Second)}}}},
		{"unknown fault sensor", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{ok}, Faults: []Fault{{Device: "d", Sensors: []string{"co2"}, Kind: Spike, Start: start, End: start.Add(time.Second)}}}},
		{"unknown kind", Config{Start: start, End: start.Add(time.Hour), Devices: []Device{ok}, Faults: []Fault{{Device: "d", Sensors: []string{"temperature"}, Kind: "bad", Start: start, End: start.Add(time.Second)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFleet(tt.cfg); !errors.Is(err, ErrInvalid) {
				t.Errorf("NewFleet: got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestPlanFaults(t *testing.T) {
	devs := NewDevices(1, 5, 4, time.Minute)
	end := start.Add(10 * 24 * time.Hour)
	faults, err := PlanFaults(8, devs, start, end, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) < 15 {
		t.Errorf("%d faults planned, want about 20", len(faults))
	}
	byDev := map[string][]Fault{}
	for _, f := range faults {
		if f.Start.Before(start.Add(10*24*time.Hour/5)) || f.End.After(end) || !f.End.After(f.Start) {
			t.Errorf("fault %+v outside [20%%, 100%%) of the period", f)
		}
		if !f.Kind.Valid() || len(f.Sensors) == 0 {
			t.Errorf("fault %+v: bad kind or no sensors", f)
		}
		byDev[f.Device] = append(byDev[f.Device], f)
	}
	for d, fs := range byDev {
		for i := 1; i < len(fs); i++ {
			if fs[i].Start.Before(fs[i-1].End) {
				t.Errorf("device %s: faults %d and %d overlap", d, i-1, i)
			}
		}
	}
	if _, err := NewFleet(Config{Start: start, End: end, Devices: devs, Faults: faults}); err != nil {
		t.Errorf("planned faults rejected: %v", err)
	}
	if _, err := PlanFaults(8, devs, start, end, 4, []Kind{"nope"}); err == nil {
		t.Errorf("unknown kind accepted")
	}
}

func TestPointsMatchReadings(t *testing.T) {
	fl, err := NewFleet(Config{Seed: 1, Start: start, End: start.Add(time.Hour), Devices: NewDevices(1, 2, 3, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for r := range fl.Readings() {
		n += len(r.Fields)
	}
	var pts int
	var last int64
	for p := range fl.Points() {
		pts++
		if p.Time < last || p.Series.Device() == "" || p.Series.Measurement != DefaultMeasurement {
			t.Fatalf("point %d: %+v out of order or without device", pts, p)
		}
		if site, ok := p.Series.Tags.Get("site"); !ok || site == "" {
			t.Fatalf("point %d: no site tag", pts)
		}
		last = p.Time
	}
	if pts != n {
		t.Errorf("%d points for %d reading fields", pts, n)
	}
}

func BenchmarkReadings(b *testing.B) {
	fl, err := NewFleet(Config{Seed: 1, Start: start, End: start.Add(24 * time.Hour), Devices: NewDevices(1, 10, 5, time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for r := range fl.Readings() {
			n += len(r.Fields)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// TestCorrelationBreak checks the kind's promise: in the window the broken
// sensor keeps its own level and spread, but stops agreeing with its
// device's other sensors.
func TestCorrelationBreak(t *testing.T) {
	dev := Device{ID: "d", Sensors: Catalogue()[:2], Interval: 5 * time.Minute}
	end := start.Add(20 * 24 * time.Hour)
	fs, fe := start.Add(10*24*time.Hour), start.Add(13*24*time.Hour)
	f := Fault{Device: "d", Sensors: []string{"humidity"}, Kind: CorrelationBreak, Start: fs, End: fe}
	var worse int
	for seed := range uint64(5) {
		clean := collect(t, Config{Seed: seed, Start: start, End: end, Devices: []Device{dev}})
		broken := collect(t, Config{Seed: seed, Start: start, End: end, Devices: []Device{dev}, Faults: []Fault{f}})
		window := func(rs []Reading, s string) []float64 {
			ts, vs := sensorValues(rs, "d", s)
			var out []float64
			for i, ms := range ts {
				if ms >= fs.UnixMilli() && ms < fe.UnixMilli() {
					out = append(out, vs[i])
				}
			}
			return out
		}
		temp, hum, humBroken := window(clean, "temperature"), window(clean, "humidity"), window(broken, "humidity")
		sd := stddev
		if r := sd(humBroken) / sd(hum); r < 0.5 || r > 2 {
			t.Errorf("seed %d: humidity spread changed by a factor %.2f in the break", seed, r)
		}
		if d := math.Abs(mean(humBroken) - mean(hum)); d > 3*sd(hum) {
			t.Errorf("seed %d: humidity level moved by %.1f in the break", seed, d)
		}
		c, cb := corr(temp, hum), corr(temp, humBroken)
		t.Logf("seed %d: corr(temperature, humidity) %.2f normal, %.2f broken", seed, c, cb)
		if cb > c+0.15 {
			worse++
		}
	}
	if worse != 5 {
		t.Errorf("correlation weakened by more than 0.15 in %d of 5 seeds, want all", worse)
	}
}

func stddev(xs []float64) float64 {
	m := mean(xs)
	s := 0.0
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)))
}
