package detect

import "math"

const (
	famBins = 32 // bins of the familiarity histogram
	famCap  = 1 << 20
)

// familiar is a coarse histogram of the values a series has taken, with a
// bin width that doubles (merging bins) whenever a value falls outside it,
// so it always covers the series' whole history in a fixed size. It says
// whether a value lies in a range the series has occupied for a sustained
// time before: a level seen before, even if rare (the load of a working day
// after a weekend), should stop alarming after its first occurrence, while a
// level never occupied (a shift, a drift's end) still alarms.
type familiar struct {
	lo, step float64 // left edge and width of bin 0; step 0 until initialised
	n        [famBins]float64
}

// init sets the histogram over the warm-up range [lo, hi], which then
// occupies the middle quarter of the bins.
func (f *familiar) init(lo, hi, floor float64) {
	f.step = max(hi-lo, floor, 1e-12) / (famBins / 4)
	f.lo = lo - (famBins*3/8)*f.step
	f.n = [famBins]float64{}
}

// bin returns the bin of v, widening the histogram until v fits.
func (f *familiar) bin(v float64) int {
	for range 64 {
		i := math.Floor((v - f.lo) / f.step)
		if i >= 0 && i < famBins {
			return int(i)
		}
		// Merge pairs of bins; grow towards v.
		var m [famBins]float64
		off := 0
		if i < 0 {
			off = famBins / 2
			f.lo -= famBins * f.step
		}
		for j, c := range f.n {
			m[off+j/2] += c
		}
		f.n = m
		f.step *= 2
	}
	return 0 // not reached for finite v
}

// lookup returns v's bin and how many readings were learned in it so far
// (-1 and 0 before init).
func (f *familiar) lookup(v float64) (int, float64) {
	if f.step == 0 {
		return -1, 0
	}
	b := f.bin(v)
	return b, f.n[b]
}

// learn counts one reading in bin b (from lookup).
func (f *familiar) learn(b int) {
	if b < 0 {
		return
	}
	f.n[b]++
	if f.n[b] >= famCap {
		for j := range f.n {
			f.n[j] /= 2
		}
	}
}

func (f *familiar) encode(e *encoder) {
	e.f64(f.lo)
	e.f64(f.step)
	for _, c := range f.n {
		e.f64(c)
	}
}

func (f *familiar) decode(d *decoder) {
	f.lo = d.f64()
	f.step = d.f64()
	for i := range f.n {
		f.n[i] = d.f64()
	}
	if d.err == nil && (!(f.step >= 0) || math.IsInf(f.step, 0) || math.IsNaN(f.lo) || math.IsInf(f.lo, 0)) {
		d.err = ErrBadState
	}
}
