package detect

import "encoding/binary"

// Contextual novelty, after the idea of CAD-OSE (Smirnov, 2016): the value
// is quantised coarsely into levels relative to the padded warm-up range (a
// "fact"), with hysteresis so that noise around a level edge does not flap;
// the last one and two distinct facts form contexts, and a small table
// remembers which facts followed each context (a fixed table indexed by the
// context: 72 two-byte bitmasks). A level change whose
// contexts are new, or did not predict it, is novel: on noisy data a new
// transition between coarse levels is rare, while a level the series never
// reached, or reached by an unusual path, is one. The novelty alarms only
// after a quiet rest (no novel change for ctxQuiet readings) and with some
// evidence from the other components, so a series still exploring its range
// does not alarm on every first visit.
const (
	ctxLevels   = 6    // levels across the padded warm-up range (plus one below and one above)
	ctxPad      = 0.1  // padding of the warm-up range, as a share of it
	ctxHyst     = 0.5  // a level changes only past its edge by ctxHyst level widths
	ctxOrder    = 2    // longest context, in distinct facts
	ctxThresh   = 0.75 // novelty that alarms
	ctxQuiet    = 300  // readings without a novelty over ctxQuietMax before one can alarm
	ctxQuietMax = 0.6
	ctxMinSeen  = 500 // readings learned before the novelty can alarm
	ctxEvid     = 0.3 // raw score of the other components a novel context needs to alarm
	ctxFacts    = ctxLevels + 2
	ctxTable    = ctxFacts + ctxFacts*ctxFacts // contexts of one and two facts
)

// contextModel is the bounded state of the contextual novelty component.
type contextModel struct {
	lo, step float64 // quantisation: left edge and level width; step 0 until init
	hist     [ctxOrder]uint8
	nh       uint8
	quiet    uint32           // consecutive readings without a novelty over ctxQuietMax
	seen     uint32           // readings learned, saturating
	table    [ctxTable]uint16 // per context, the bitmask of the facts seen after it (0: new)
}

func (m *contextModel) init(lo, hi, floor float64) {
	span := max(hi-lo, floor, 1e-12)
	lo -= ctxPad * span
	span *= 1 + 2*ctxPad
	*m = contextModel{lo: lo, step: span / ctxLevels}
}

// fact returns v's level: 1..ctxLevels inside the padded warm-up range, 0
// below and ctxLevels+1 above.
func (m *contextModel) fact(v float64) uint8 {
	x := (v - m.lo) / m.step
	switch {
	case !(x >= 0):
		return 0
	case x >= ctxLevels:
		return ctxLevels + 1
	}
	return uint8(x) + 1
}

// update learns v and returns its novelty in [0, 1]: 0 unless v changes the
// level, else the mean of the share of its contexts that did not predict
// the new level and the share that are new.
func (m *contextModel) update(v float64) float64 {
	if m.step == 0 {
		return 0
	}
	if m.seen < 1<<30 {
		m.seen++
	}
	f := m.fact(v)
	if m.nh > 0 && f != m.hist[0] {
		// Hysteresis: stay at the current level unless v is well past its edge.
		c := m.hist[0]
		lo := m.lo + (float64(c)-1)*m.step
		hi := lo + m.step
		if (c == 0 || v > lo-ctxHyst*m.step) && (c == ctxLevels+1 || v < hi+ctxHyst*m.step) {
			f = c
		}
	}
	if m.nh > 0 && m.hist[0] == f {
		return 0
	}
	k := int(m.nh)
	var miss, fresh int
	bit := uint16(1) << f
	idx := 0
	for o := range k {
		// Context o+1 (the last o+1 facts) indexes the table directly.
		if o == 0 {
			idx = int(m.hist[0])
		} else {
			idx = ctxFacts + idx*ctxFacts + int(m.hist[o])
		}
		next := &m.table[idx]
		switch {
		case *next == 0:
			fresh++
			miss++
		case *next&bit == 0:
			miss++
		}
		*next |= bit
	}
	copy(m.hist[1:], m.hist[:ctxOrder-1])
	m.hist[0] = f
	m.nh = min(m.nh+1, ctxOrder)
	if k == 0 {
		return 0
	}
	return float64(miss+fresh) / float64(2*k)
}

// alarm reports whether novelty s alarms: high, after a quiet rest and
// enough history; it also counts the quiet rest.
func (m *contextModel) alarm(s float64) bool {
	a := s >= ctxThresh && m.quiet >= ctxQuiet && m.seen >= ctxMinSeen
	if s <= ctxQuietMax {
		m.quiet = min(m.quiet+1, 1<<30)
	} else {
		m.quiet = 0
	}
	return a
}

func (m *contextModel) encode(e *encoder) {
	e.f64(m.lo)
	e.f64(m.step)
	e.b = append(e.b, m.hist[:]...)
	e.u8(m.nh)
	e.u32(m.quiet)
	e.u32(m.seen)
	for _, c := range m.table {
		e.b = binary.LittleEndian.AppendUint16(e.b, c)
	}
}

func (m *contextModel) decode(d *decoder) {
	m.lo = d.f64()
	m.step = d.f64()
	for i := range m.hist {
		m.hist[i] = d.u8()
	}
	m.nh = d.u8()
	m.quiet = d.u32()
	m.seen = d.u32()
	for i := range m.table {
		if b := d.take(2, "context entry"); b != nil {
			m.table[i] = binary.LittleEndian.Uint16(b)
		}
	}
	bad := m.nh > ctxOrder || !(m.step >= 0) || m.step > 1e308 || m.lo != m.lo || m.lo > 1e308 || m.lo < -1e308
	for _, h := range m.hist {
		bad = bad || h > ctxLevels+1
	}
	if d.err == nil && bad {
		d.err = ErrBadState
	}
}
