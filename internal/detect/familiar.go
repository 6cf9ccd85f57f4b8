package detect

import (
	"encoding/binary"
	"math"
)

const (
	famBins  = 32 // bins of the familiarity histogram
	famHours = 24 // hour-of-day contexts of a seasonal series
	famCap   = 1 << 20
	famHCap  = math.MaxUint16
)

// familiar is a coarse histogram of the values a series has taken, with a
// bin width that doubles (merging bins) whenever a value falls outside it,
// so it always covers the series' whole history in a fixed size. It says
// whether a value lies in a range the series has occupied for a sustained
// time before: a level seen before, even if rare (the load of a working day
// after a weekend), should stop alarming after its first occurrence, while a
// level never occupied (a shift, a drift's end) still alarms. For a seasonal
// series it also counts per hour of the day, so that a value familiar at
// another hour (a daily pattern out of phase) is not familiar now.
type familiar struct {
	lo, step float64 // left edge and width of bin 0; step 0 until initialised
	n        [famBins]float64
	hours    []uint16 // famHours×famBins counts per hour of day; nil if not seasonal
}

// init sets the histogram over the warm-up range [lo, hi], which then
// occupies the middle quarter of the bins.
func (f *familiar) init(lo, hi, floor float64, seasonal bool) {
	f.step = max(hi-lo, floor, 1e-12) / (famBins / 4)
	f.lo = lo - (famBins*3/8)*f.step
	f.n = [famBins]float64{}
	f.hours = nil
	if seasonal {
		f.hours = make([]uint16, famHours*famBins)
	}
}

// bin returns the bin of v, widening the histogram until v fits.
func (f *familiar) bin(v float64) int {
	for range 64 {
		i := math.Floor((v - f.lo) / f.step)
		if i >= 0 && i < famBins {
			return int(i)
		}
		// Merge pairs of bins; grow towards v.
		off := 0
		if i < 0 {
			off = famBins / 2
			f.lo -= famBins * f.step
		}
		var m [famBins]float64
		for j, c := range f.n {
			m[off+j/2] += c
		}
		f.n = m
		for h := 0; h < len(f.hours); h += famBins {
			var mh [famBins]uint32
			for j, c := range f.hours[h : h+famBins] {
				mh[off+j/2] += uint32(c)
			}
			for j, c := range mh {
				f.hours[h+j] = uint16(min(c, famHCap))
			}
		}
		f.step *= 2
	}
	return 0 // not reached for finite v
}

// hourOf returns the hour-of-day context of time t (Unix ms).
func hourOf(t int64) int {
	h := int((t / 3600000) % famHours)
	if h < 0 {
		h += famHours
	}
	return h
}

// lookup returns v's bin and how many readings were learned in it so far:
// overall, and at the hour of day of t (the overall count when not
// seasonal). The bin is -1 before init.
func (f *familiar) lookup(t int64, v float64) (b int, all, hour float64) {
	if f.step == 0 {
		return -1, 0, 0
	}
	b = f.bin(v)
	all, hour = f.n[b], f.n[b]
	if f.hours != nil {
		h := f.hours[hourOf(t)*famBins:][:famBins]
		hour = float64(h[b])
	}
	return b, all, hour
}

// learn counts one reading at time t in bin b (from lookup).
func (f *familiar) learn(t int64, b int) {
	if b < 0 {
		return
	}
	f.n[b]++
	if f.n[b] >= famCap {
		for j := range f.n {
			f.n[j] /= 2
		}
	}
	if f.hours != nil {
		h := hourOf(t) * famBins
		if f.hours[h+b] == famHCap {
			for j := range f.hours[h : h+famBins] {
				f.hours[h+j] /= 2
			}
		}
		f.hours[h+b]++
	}
}

func (f *familiar) encode(e *encoder) {
	e.f64(f.lo)
	e.f64(f.step)
	for _, c := range f.n {
		e.f64(c)
	}
	e.u32(uint32(len(f.hours)))
	for _, c := range f.hours {
		e.b = binary.LittleEndian.AppendUint16(e.b, c)
	}
}

func (f *familiar) decode(d *decoder) {
	f.lo = d.f64()
	f.step = d.f64()
	for i := range f.n {
		f.n[i] = d.f64()
	}
	nh := int(d.u32())
	if d.err == nil && nh != 0 && nh != famHours*famBins {
		d.err = ErrBadState
	}
	f.hours = nil
	if nh > 0 && d.err == nil {
		f.hours = make([]uint16, nh)
		for i := range f.hours {
			if b := d.take(2, "familiarity counts"); b != nil {
				f.hours[i] = binary.LittleEndian.Uint16(b)
			}
		}
	}
	if d.err == nil && (!(f.step >= 0) || math.IsInf(f.step, 0) || math.IsNaN(f.lo) || math.IsInf(f.lo, 0)) {
		d.err = ErrBadState
	}
}
