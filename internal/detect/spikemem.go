package detect

import "math"

const (
	spikeSlots  = 64    // spike landings remembered
	spikeNear   = 0.05  // share of the running range within which two landings are the same size
	spikeRecord = 0.01  // share of the running range beyond every earlier landing that makes a new size
	spikeRecur  = 2     // earlier landings of the same size that make a spike a recurring pattern
	spikeDays   = 7     // days a landing is remembered (at least scaleMemory × LongScale readings)
	spikeTicks  = 16384 // the memory spans fewer than spikeTicks ticks of the landing clock
	spikeSweep  = 4096  // ticks between sweeps of forgotten landings
	spikeRel    = 0.15  // share of a landing's distance from the baseline within which a landing at the same time of day is the same size
	spikeHour   = 11    // 1/256 days (62 minutes) either side that make the same time of day
)

// spikeMemory remembers where the last spikeSlots spikes (readings whose
// innovation was beyond the direct-evidence bar and that moved the series
// away from its baseline) landed, in which direction and at what time of
// day. A spike that lands near at least spikeRecur earlier spikes in the
// same direction, and not beyond all of them by spikeRecord of the range,
// is a recurring pattern of the series (a daily job, a regular burst) and
// does not alarm by itself; a spike of a new size (or a first or second
// one) still does. Near is within spikeNear of the range, or, for a landing
// at the same time of day (within spikeHour), within spikeRel of the
// spike's own distance from the baseline: a daily job whose load varies
// from day to day (1.33 to 1.47 on a series idling at 0.13) is the same job,
// while a new record still alarms.
//
// A landing is kept in five bytes: its offset from ref (the warm-up median)
// in units of unit (the warm-up span) as an IEEE half-precision float (a
// relative precision of 2⁻¹¹, far finer than spikeRecord, up to 65,504
// warm-up spans), the reading at which it landed on a 16-bit clock that
// ticks every 2^shift readings, shift chosen at warm-up so that the memory
// spans fewer than spikeTicks ticks, and its time of day in 1/256 days.
// Landings older than the memory are cleared at least every spikeSweep
// ticks, well before the clock wraps.
type spikeMemory struct {
	ref, unit float64
	v         [spikeSlots]uint16 // landing offsets from ref in units, half precision
	at        [spikeSlots]uint16 // clock tick of each landing
	tod       [spikeSlots]uint8  // time of day of each landing, in 1/256 day
	used      uint64             // slots in use
	up        uint64             // slots whose spike went up
	next      uint8              // slot written next
	shift     uint8              // the clock ticks every 2^shift readings
}

// init empties the memory for landings around ref, on a scale of unit, to
// be remembered for mem readings.
func (s *spikeMemory) init(ref, unit, mem float64) {
	if !(unit > 0) || math.IsInf(unit, 0) {
		unit = 1
	}
	*s = spikeMemory{ref: ref, unit: unit}
	for s.shift < 31 && mem >= float64(uint64(spikeTicks)<<s.shift) {
		s.shift++
	}
}

func (s *spikeMemory) tick(now uint32) uint16 { return uint16(now >> s.shift) }

// age is the age in readings (to a tick) of the landing in slot i.
func (s *spikeMemory) age(i int, now uint32) float64 {
	return float64(uint32(s.tick(now)-s.at[i]) << s.shift)
}

// recurring reports whether a spike landing at v (upwards if up) at reading
// now and time of day tod is a recurring pattern: at least spikeRecur
// earlier landings in the same direction within the last mem readings lie
// within tol of v (or within rtol, at the same time of day), and v is not
// beyond every one of them by more than rec.
func (s *spikeMemory) recurring(v float64, up bool, now uint32, tod uint8, mem, tol, rtol, rec float64) bool {
	near, record := 0, true
	for i := range s.v {
		bit := uint64(1) << i
		if s.used&bit == 0 || (s.up&bit != 0) != up || s.age(i, now) > mem {
			continue
		}
		d := v - (s.ref + s.unit*halfToFloat(s.v[i]))
		if !up {
			d = -d
		}
		if d <= rec {
			record = false
		}
		dt := int8(tod - s.tod[i])
		if math.Abs(d) <= tol || (dt >= -spikeHour && dt <= spikeHour && math.Abs(d) <= rtol) {
			near++
		}
	}
	return near >= spikeRecur && !record
}

// learn remembers a spike landing at v at reading now and time of day tod.
func (s *spikeMemory) learn(v float64, up bool, now uint32, tod uint8) {
	i := s.next % spikeSlots
	bit := uint64(1) << i
	s.v[i], s.at[i] = floatToHalf((v-s.ref)/s.unit), s.tick(now)
	s.tod[i] = tod
	s.used |= bit
	if up {
		s.up |= bit
	} else {
		s.up &^= bit
	}
	s.next = (i + 1) % spikeSlots
}

// sweep forgets the landings older than mem readings, every spikeSweep
// ticks, so that no landing's age wraps around the 16-bit clock.
func (s *spikeMemory) sweep(now uint32, mem float64) {
	if now&(uint32(spikeSweep)<<s.shift-1) != 0 || s.used == 0 {
		return
	}
	for i := range s.at {
		if bit := uint64(1) << i; s.used&bit != 0 && s.age(i, now) > mem {
			s.used &^= bit
			s.up &^= bit
		}
	}
}

func (s *spikeMemory) encode(e *encoder) {
	e.f64(s.ref)
	e.f64(s.unit)
	for i := range s.v {
		e.u32(uint32(s.v[i]) | uint32(s.at[i])<<16)
		e.u8(s.tod[i])
	}
	e.i64(int64(s.used))
	e.i64(int64(s.up))
	e.u8(s.next)
	e.u8(s.shift)
}

func (s *spikeMemory) decode(d *decoder) {
	s.ref, s.unit = d.f64(), d.f64()
	for i := range s.v {
		x := d.u32()
		s.v[i], s.at[i] = uint16(x), uint16(x>>16)
		s.tod[i] = d.u8()
	}
	s.used, s.up = uint64(d.i64()), uint64(d.i64())
	s.next, s.shift = d.u8(), d.u8()
	if d.err == nil && (s.next >= spikeSlots || s.shift > 31 || s.up&^s.used != 0 ||
		math.IsNaN(s.ref) || math.IsInf(s.ref, 0) || !(s.unit >= 0) || math.IsInf(s.unit, 0)) {
		d.err = ErrBadState
	}
}

// floatToHalf rounds x to the nearest IEEE 754 half-precision value
// (saturating at ±65,504).
func floatToHalf(x float64) uint16 {
	var sign uint16
	if x < 0 || (x == 0 && math.Signbit(x)) {
		sign, x = 0x8000, -x
	}
	switch {
	case !(x < 65504): // also NaN, never stored
		return sign | 0x7bff
	case x < 1.0/(1<<24)/2:
		return sign
	}
	f, e := math.Frexp(x) // x = f·2^e, f in [0.5, 1)
	exp := e + 14         // biased exponent of 1.m × 2^(e-1)
	if exp < 1 {          // subnormal: m × 2^-24
		return sign | uint16(math.RoundToEven(x*(1<<24)))
	}
	m := uint16(math.RoundToEven((2*f - 1) * 1024))
	if m == 1024 {
		m, exp = 0, exp+1
	}
	if exp > 30 {
		return sign | 0x7bff
	}
	return sign | uint16(exp)<<10 | m
}

// halfToFloat is the value of the IEEE 754 half-precision bits h (no
// infinities or NaNs: floatToHalf saturates).
func halfToFloat(h uint16) float64 {
	exp, m := int(h>>10&0x1f), float64(h&0x3ff)
	var x float64
	if exp == 0 {
		x = math.Ldexp(m, -24)
	} else {
		x = math.Ldexp(1+m/1024, exp-15)
	}
	if h&0x8000 != 0 {
		x = -x
	}
	return x
}

// timeOfDay is the time of day of t (Unix milliseconds, UTC) in 1/256 days.
func timeOfDay(t int64) uint8 {
	const day = 86400000
	return uint8((t%day + day) % day * 256 / day)
}
