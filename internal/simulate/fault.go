package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind names a kind of injected fault.
type Kind string

// The fault kinds. The meaning of Fault.Magnitude depends on the kind.
const (
	// Spike: a short excursion (one to a few readings) of Magnitude scales
	// (default ±8).
	Spike Kind = "spike"
	// LevelShift: from Start on the sensor reads Magnitude scales (default
	// ±4) off its normal level, permanently; the window labels the onset.
	LevelShift Kind = "level_shift"
	// Drift: a linear ramp from 0 at Start to Magnitude scales (default ±6)
	// at End, after which the offset stays.
	Drift Kind = "drift"
	// Stuck: the sensor repeats its reading from Start until End (flat line).
	Stuck Kind = "stuck"
	// NoiseBurst: extra white noise of Magnitude scales (default 3).
	NoiseBurst Kind = "noise_burst"
	// Dropout: no readings at all from the sensors between Start and End.
	Dropout Kind = "dropout"
	// SeasonalBreak: the daily and weekly drivers of the sensors run
	// Magnitude hours (default 9) out of phase: each reading is plausible,
	// the daily pattern is not.
	SeasonalBreak Kind = "seasonal_break"
	// CorrelationBreak: the sensors follow weather and load drivers of their
	// own instead of their device's: each sensor looks normal alone, but no
	// longer agrees with the device's other sensors.
	CorrelationBreak Kind = "correlation_break"
)

// Kinds returns every fault kind.
func Kinds() []Kind {
	return []Kind{Spike, LevelShift, Drift, Stuck, NoiseBurst, Dropout, SeasonalBreak, CorrelationBreak}
}

// Valid reports whether k is a known fault kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds(), k) }

// Persistent reports whether the fault's effect outlasts its window (level
// shifts and drifts stay).
func (k Kind) Persistent() bool { return k == LevelShift || k == Drift }

// Fault is one injected fault and its label: which device and sensors, what
// kind, and the window [Start, End) it affects.
type Fault struct {
	Device  string    `json:"device"`
	Sensors []string  `json:"sensors"`
	Kind    Kind      `json:"kind"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Magnitude sets the size of the fault, per kind (see the Kind
	// constants); 0 selects the kind's default.
	Magnitude float64 `json:"magnitude,omitempty"`
}

func (f Fault) magnitude() float64 {
	if f.Magnitude != 0 {
		return f.Magnitude
	}
	switch f.Kind {
	case Spike:
		return 8
	case LevelShift:
		return 4
	case Drift:
		return 6
	case NoiseBurst:
		return 3
	case SeasonalBreak:
		return 9
	}
	return 0
}

// samples returns the range of a window's length in readings for kind k.
func samples(k Kind) (lo, hi int) {
	switch k {
	case Spike:
		return 1, 3
	case LevelShift:
		return 30, 120
	case Drift:
		return 200, 900
	case Stuck:
		return 60, 400
	case NoiseBurst:
		return 30, 200
	case Dropout:
		return 30, 300
	case CorrelationBreak:
		return 120, 600
	}
	return 1, 1
}

// duration draws the length of a fault window of kind k on a device sampled
// every interval.
func duration(rng *rand.Rand, k Kind, interval time.Duration) time.Duration {
	if k == SeasonalBreak {
		// Patterns are daily: a break lasts one to two days.
		return 24*time.Hour + time.Duration(rng.Int64N(int64(24*time.Hour)))
	}
	lo, hi := samples(k)
	n := lo + rng.IntN(hi-lo+1)
	return time.Duration(n) * interval
}

// drawMagnitude draws a fault magnitude for kind k (0 for kinds without one).
func drawMagnitude(rng *rand.Rand, k Kind) float64 {
	sign := 1.0
	if rng.IntN(2) == 0 {
		sign = -1
	}
	u := rng.Float64()
	switch k {
	case Spike:
		return sign * (6 + 6*u)
	case LevelShift:
		return sign * (3 + 3*u)
	case Drift:
		return sign * (5 + 5*u)
	case NoiseBurst:
		return 2.5 + 2.5*u
	case SeasonalBreak:
		return 6 + 6*u
	}
	return 0
}

// PlanFaults draws n faults per device, of kinds chosen from kinds (all kinds
// when empty), placed without overlap between 20% and 95% of [start, end).
// Correlation breaks are only planned on devices with at least two sensors
// and seasonal breaks only when [start, end) spans at least four days. The
// plan depends only on seed and the arguments.
func PlanFaults(seed uint64, devices []Device, start, end time.Time, n int, kinds []Kind) ([]Fault, error) {
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	for _, k := range kinds {
		if !k.Valid() {
			return nil, fmt.Errorf("plan faults: unknown kind %q", k)
		}
	}
	if !end.After(start) {
		return nil, fmt.Errorf("plan faults: end %v not after start %v", end, start)
	}
	span := end.Sub(start)
	var out []Fault
	for di, d := range devices {
		rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(di)))
		usable := slices.DeleteFunc(slices.Clone(kinds), func(k Kind) bool {
			return (k == CorrelationBreak && len(d.Sensors) < 2) || (k == SeasonalBreak && span < 4*24*time.Hour)
		})
		if len(usable) == 0 || n <= 0 {
			continue
		}
		lo := start.Add(span / 5)
		slot := time.Duration(float64(span) * 0.75 / float64(n))
		for i := range n {
			k := usable[rng.IntN(len(usable))]
			f, ok := planOne(rng, d, k, lo.Add(time.Duration(i)*slot), slot)
			if ok {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// planOne places one fault of kind k on device d inside [from, from+slot),
// or reports false when the slot is too short for it.
func planOne(rng *rand.Rand, d Device, k Kind, from time.Time, slot time.Duration) (Fault, bool) {
	dur := duration(rng, k, d.interval())
	if dur >= slot {
		dur = slot / 2
		if k == SeasonalBreak || dur < d.interval() {
			return Fault{}, false
		}
	}
	off := time.Duration(rng.Int64N(int64(slot - dur)))
	start := from.Add(off).Truncate(time.Millisecond)
	f := Fault{Device: d.ID, Kind: k, Start: start, End: start.Add(dur), Magnitude: drawMagnitude(rng, k)}
	names := make([]string, len(d.Sensors))
	for i, s := range d.Sensors {
		names[i] = s.Name
	}
	switch k {
	case Dropout:
		if rng.IntN(3) == 0 {
			f.Sensors = names // the whole device goes silent
		} else {
			f.Sensors = []string{names[rng.IntN(len(names))]}
		}
	case CorrelationBreak:
		f.Sensors = []string{names[coupledSensor(rng, d.Sensors)]}
	default:
		f.Sensors = []string{names[rng.IntN(len(names))]}
	}
	return f, true
}

// coupledSensor picks a sensor whose readings depend on the shared drivers.
func coupledSensor(rng *rand.Rand, ss []Sensor) int {
	var idx []int
	for i, s := range ss {
		if math.Abs(s.Weather) > 2*s.Noise || s.Load != 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return rng.IntN(len(ss))
	}
	return idx[rng.IntN(len(idx))]
}
