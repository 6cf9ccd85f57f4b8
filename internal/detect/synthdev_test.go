package detect

import "math/rand/v2"

// Synthetic multivariate device: four sensors driven by one smooth latent
// factor (so they are correlated), one of them also trending, plus noise.

type devFault int

const (
	devShift     devFault = iota // one sensor offset by 3 noise units
	devCorrBreak                 // one sensor decouples from the factor
	devVariance                  // one sensor's noise ×4
	devDrift                     // one sensor drifts away
	numDevFaults
)

func (f devFault) String() string {
	return [...]string{"shift", "corrbreak", "variance", "drift"}[f]
}

type devSeries struct {
	t       []int64
	rows    [][]float64
	windows []window
	label   []bool
}

var devSensors = []string{"temp", "pressure", "current", "flow"}

func genDevice(seed uint64, n int, faults []devFault) devSeries {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	load := []float64{2, -1.5, 1, 3}
	offs := []float64{70, 5, 12, 100}
	noise := []float64{0.3, 0.1, 0.2, 0.5}
	var s devSeries
	f, g := 0.0, 0.0
	type ev struct {
		f        devFault
		from, to int
		sensor   int
	}
	var evs []ev
	slot := (n - 400) / max(len(faults), 1)
	for i, fl := range faults {
		from := 400 + i*slot + rng.IntN(max(slot-300, 1))
		evs = append(evs, ev{fl, from, from + 150, rng.IntN(4)})
	}
	for i := range n {
		f = 0.95*f + 0.3*rng.NormFloat64()
		g = 0.95*g + 0.3*rng.NormFloat64()
		row := make([]float64, 4)
		for j := range row {
			row[j] = offs[j] + load[j]*f + noise[j]*rng.NormFloat64()
		}
		row[2] += 0.002 * float64(i) // a slowly trending sensor
		anom := false
		for _, e := range evs {
			if i < e.from || i >= e.to {
				continue
			}
			anom = true
			j := e.sensor
			switch e.f {
			case devShift:
				row[j] += 3 * noise[j] * 2
			case devCorrBreak:
				row[j] += load[j] * (g - f)
			case devVariance:
				row[j] += 4 * noise[j] * rng.NormFloat64()
			case devDrift:
				row[j] += 8 * noise[j] * float64(i-e.from) / 150
			}
		}
		s.t = append(s.t, 1_700_000_000_000+int64(i)*1000)
		s.rows = append(s.rows, row)
		s.label = append(s.label, anom)
	}
	for _, e := range evs {
		s.windows = append(s.windows, window{s.t[e.from], s.t[e.to-1] + 20*1000})
	}
	return s
}

// pointF1 is the point-wise F1 of alarms against labels.
func pointF1(label, alarm []bool) float64 {
	tp, fp, fn := 0, 0, 0
	for i := range label {
		switch {
		case label[i] && alarm[i]:
			tp++
		case alarm[i]:
			fp++
		case label[i]:
			fn++
		}
	}
	if tp == 0 {
		return 0
	}
	p, r := float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn)
	return 2 * p * r / (p + r)
}
