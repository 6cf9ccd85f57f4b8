package detect

import (
	"fmt"
	"math"
)

// maxAvg bounds Config.LikelihoodAvg so the ring is a fixed array.
const maxAvg = 32

// Likelihood floors from Ahmad et al. (2017).
const (
	likMeanFloor = 0.03
	likVarFloor  = 0.0003
	redQ         = 1e-5
	redReplace   = 1e-3
)

// likelihood turns a dense raw score in [0,1] into a calibrated, sparse one:
// the anomaly likelihood of Ahmad, Lavin, Purdy and Agha (Neurocomputing,
// 2017), with the red filter and the log output. Instead of a ring of the last
// W short-window means it keeps an exponentially weighted mean and variance
// with effective memory W, so its state is O(1) and not O(W).
type likelihood struct {
	ring   [maxAvg]float64
	pos    int
	filled int
	sum    float64
	count  float64 // history updates, capped at memory
	mean   float64 // EW mean of short-window means
	varr   float64 // EW variance of short-window means
	redPre bool    // previous unfiltered q was red
}

// update adds raw and returns the log-likelihood score in [0, 1].
func (l *likelihood) update(raw float64, avg, memory int) float64 {
	if l.pos >= avg || l.filled > avg {
		// The averaging window changed since the state was saved: restart it.
		l.ring, l.pos, l.filled, l.sum = [maxAvg]float64{}, 0, 0, 0
	}
	if l.filled == avg {
		l.sum -= l.ring[l.pos]
	} else {
		l.filled++
	}
	l.ring[l.pos] = raw
	l.sum += raw
	l.pos++
	if l.pos == avg {
		l.pos = 0
	}
	m := l.sum / float64(l.filled)
	if m < 0 {
		m = 0 // rounding of the running sum
	}

	mu := max(l.mean, likMeanFloor)
	sd := math.Sqrt(max(l.varr, likVarFloor))
	q := 0.5 * math.Erfc((m-mu)/(sd*math.Sqrt2))
	if l.count < 2 {
		q = 0.5
	}
	red := q <= redQ
	if red && l.redPre {
		q = redReplace
	}
	l.redPre = red

	// Update the history after scoring: the current window is judged against
	// the past only.
	if l.count < float64(memory) {
		l.count++
	}
	a := 1 / l.count
	d := m - l.mean
	l.mean += a * d
	l.varr = (1 - a) * (l.varr + a*d*d)
	return logScore(q)
}

// logScore maps a tail probability q to ln(1.0000000001 − L)/ln(1e−10) with
// L = 1 − q: 0.999 ↦ 0.30, 0.99999 ↦ 0.50.
func logScore(q float64) float64 {
	s := math.Log(q+1e-10) / math.Log(1e-10)
	return min(max(s, 0), 1)
}

func (l *likelihood) encode(e *encoder) {
	for _, v := range l.ring {
		e.f64(v)
	}
	e.u32(uint32(l.pos))
	e.u32(uint32(l.filled))
	e.f64(l.sum)
	e.f64(l.count)
	e.f64(l.mean)
	e.f64(l.varr)
	e.boolean(l.redPre)
}

func (l *likelihood) decode(d *decoder) {
	for i := range l.ring {
		l.ring[i] = d.f64()
	}
	l.pos = int(d.u32())
	l.filled = int(d.u32())
	l.sum = d.f64()
	l.count = d.f64()
	l.mean = d.f64()
	l.varr = d.f64()
	l.redPre = d.boolean()
	if d.err == nil && (l.pos >= maxAvg || l.filled > maxAvg) {
		d.err = fmt.Errorf("%w: likelihood ring position %d, filled %d", ErrBadState, l.pos, l.filled)
	}
}
