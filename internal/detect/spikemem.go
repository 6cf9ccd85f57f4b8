package detect

import "math"

const (
	spikeSlots  = 32   // spike landings remembered
	spikeNear   = 0.05 // share of the running range within which two landings are the same size
	spikeRecord = 0.01 // share of the running range beyond every earlier landing that makes a new size
	spikeRecur  = 2    // earlier landings of the same size that make a spike a recurring pattern
	spikeDays   = 7    // days a landing is remembered (at least scaleMemory × LongScale readings)
)

// spikeMemory remembers where the last spikeSlots spikes (readings whose
// innovation was beyond the direct-evidence bar) landed, and in which
// direction. A spike that lands within spikeNear of the range of at least
// spikeRecur earlier spikes in the same direction, and not beyond all of
// them by spikeRecord of the range, is a recurring pattern of the series (a
// daily job, a regular burst) and does not alarm by itself; a spike of a new
// size (or a first or second one) still does. Landings are kept as float32
// offsets from ref, the warm-up median.
type spikeMemory struct {
	ref  float64
	v    [spikeSlots]float32 // landing values − ref
	at   [spikeSlots]uint32  // reading (learned count, truncated) of each landing
	used uint32              // slots in use
	up   uint32              // slots whose spike went up
	next uint8               // slot written next
}

func (s *spikeMemory) init(ref float64) { *s = spikeMemory{ref: ref} }

// recurring reports whether a spike landing at v (upwards if up) at reading
// now is a recurring pattern: at least spikeRecur earlier landings in the
// same direction within the last mem readings lie within tol of v, and v is
// not beyond every one of them by more than rec.
func (s *spikeMemory) recurring(v float64, up bool, now uint32, mem, tol, rec float64) bool {
	x := v - s.ref
	near, record := 0, true
	for i, y := range s.v {
		bit := uint32(1) << i
		if s.used&bit == 0 || (s.up&bit != 0) != up || float64(now-s.at[i]) > mem {
			continue
		}
		d := x - float64(y)
		if !up {
			d = -d
		}
		if d <= rec {
			record = false
		}
		if math.Abs(d) <= tol {
			near++
		}
	}
	return near >= spikeRecur && !record
}

// learn remembers a spike landing at v at reading now.
func (s *spikeMemory) learn(v float64, up bool, now uint32) {
	i := s.next % spikeSlots
	bit := uint32(1) << i
	s.v[i], s.at[i] = float32(v-s.ref), now
	s.used |= bit
	if up {
		s.up |= bit
	} else {
		s.up &^= bit
	}
	s.next = (i + 1) % spikeSlots
}

func (s *spikeMemory) encode(e *encoder) {
	e.f64(s.ref)
	for i := range s.v {
		e.u32(math.Float32bits(s.v[i]))
		e.u32(s.at[i])
	}
	e.u32(s.used)
	e.u32(s.up)
	e.u8(s.next)
}

func (s *spikeMemory) decode(d *decoder) {
	s.ref = d.f64()
	for i := range s.v {
		s.v[i] = math.Float32frombits(d.u32())
		s.at[i] = d.u32()
	}
	s.used, s.up = d.u32(), d.u32()
	s.next = d.u8()
	if d.err == nil && (s.next >= spikeSlots || s.up&^s.used != 0 || math.IsNaN(s.ref) || math.IsInf(s.ref, 0)) {
		d.err = ErrBadState
	}
}
