package detect

import (
	"math"
	"math/rand/v2"
)

// Synthetic labelled series for tests: a base signal plus injected faults,
// each labelled by a window of reading indices.

type fault int

const (
	faultSpike fault = iota
	faultShift
	faultDrift
	faultVariance
	faultStuck
	faultDropout
	numFaults
)

func (f fault) String() string {
	return [...]string{"spike", "shift", "drift", "variance", "stuck", "dropout"}[f]
}

type base int

const (
	baseSeasonal base = iota // daily sine + Gaussian noise, 5-minute readings
	baseAR                   // smooth AR(1)
	baseCounts               // small integer counts
	baseHeavy                // heavy-tailed noise
	numBases
)

func (b base) String() string { return [...]string{"seasonal", "ar", "counts", "heavy"}[b] }

type window struct{ from, to int64 } // timestamps, inclusive

type labelled struct {
	t       []int64
	v       []float64
	windows []window
}

const synthStep = 5 * 60 * 1000 // 5 minutes in ms

// genBase returns n readings of the base signal and its noise scale.
func genBase(rng *rand.Rand, b base, n int) ([]float64, float64) {
	v := make([]float64, n)
	switch b {
	case baseSeasonal:
		for i := range v {
			day := float64(i) * synthStep / 86400000
			v[i] = 50 + 10*math.Sin(2*math.Pi*day) + rng.NormFloat64()*2
		}
		return v, 2
	case baseAR:
		x := 0.0
		for i := range v {
			x = 0.97*x + rng.NormFloat64()
			v[i] = 20 + x
		}
		return v, 1 / math.Sqrt(1-0.97*0.97)
	case baseCounts:
		for i := range v {
			// Poisson(4) by inversion.
			l, p, k := math.Exp(-4), 1.0, 0
			for {
				p *= rng.Float64()
				if p <= l {
					break
				}
				k++
			}
			v[i] = float64(k)
		}
		return v, 2
	default:
		for i := range v {
			// Laplace noise with unit standard deviation.
			u := rng.Float64() - 0.5
			x := -math.Copysign(math.Log(1-2*math.Abs(u)), u) / math.Sqrt2
			v[i] = 100 + 3*x
		}
		return v, 3
	}
}

// genSeries builds a series of n readings with the given faults placed at
// random after the warm-up, non-overlapping.
func genSeries(seed uint64, b base, n int, faults []fault) labelled {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	v, sd := genBase(rng, b, n)
	t := make([]int64, n)
	t0 := int64(1_700_000_000_000)
	for i := range t {
		t[i] = t0 + int64(i)*synthStep
	}
	var out labelled
	drop := make([]bool, n)
	// Faults start after a learning period: 400 readings, or three days for
	// a seasonal series (its daily profile cannot be known before).
	learn := 400
	if b == baseSeasonal {
		learn = 3 * 288
	}
	slot := (n - learn) / max(len(faults), 1)
	for fi, f := range faults {
		start := learn + fi*slot + rng.IntN(max(slot-450, 1))
		end := start
		switch f {
		case faultSpike:
			sign := 1.0
			if rng.IntN(2) == 0 {
				sign = -1
			}
			v[start] += sign * 12 * sd
		case faultShift:
			end = start + 200
			for i := start; i < n; i++ {
				v[i] += 4 * sd
			}
		case faultDrift:
			end = start + 300
			for i := start; i < n; i++ {
				v[i] += 6 * sd * min(float64(i-start)/300, 1)
			}
		case faultVariance:
			end = start + 60
			for i := start; i < end; i++ {
				v[i] += rng.NormFloat64() * 5 * sd
			}
		case faultStuck:
			end = start + 150
			for i := start + 1; i < end; i++ {
				v[i] = v[start]
			}
		case faultDropout:
			end = start + 60
			for i := start; i < end; i++ {
				drop[i] = true
			}
			end += 10
		}
		// Windows allow a detection a little after the fault: 10% of the
		// fault length plus 20 readings.
		slack := int64((end-start)/10 + 20)
		out.windows = append(out.windows, window{t[start], t[min(end, n-1)] + slack*synthStep})
	}
	for i := range v {
		if !drop[i] {
			out.t = append(out.t, t[i])
			out.v = append(out.v, v[i])
		}
	}
	return out
}

// eventScore counts windows with at least one alarm (true positives), and
// alarms outside every window (false-positive events).
func eventScore(s labelled, alarms []bool) (tp, fn, fp int) {
	hit := make([]bool, len(s.windows))
	for i, a := range alarms {
		if !a {
			continue
		}
		in := false
		for w, win := range s.windows {
			if s.t[i] >= win.from && s.t[i] <= win.to {
				hit[w], in = true, true
			}
		}
		if !in {
			fp++
		}
	}
	for _, h := range hit {
		if h {
			tp++
		} else {
			fn++
		}
	}
	return tp, fn, fp
}
