package detect

import (
	"errors"
	"math"
	"testing"
)

// A daily job that lifts the series to about the same value at the same
// time every day alarms on its first occurrences only; a spike of a new
// size still alarms at once.
func TestRecurringSpikeAlarmsOnce(t *testing.T) {
	const interval = int64(300_000) // five minutes
	const perDay = 288
	e := NewEnsemble(DefaultConfig())
	v := noisy(11, 16*perDay, 0)
	alarms := 0
	var newSize bool
	for i, x := range v {
		x = 0.066 + 0.002*x
		day, slot := i/perDay, i%perDay
		if day >= 1 && slot == 40 {
			x = 1.4 + 0.02*float64(day%3) // the daily job
			if day == 15 {
				x = 3 // a spike of a new size
			}
		}
		r := e.Update(t0+int64(i)*interval, x)
		if r.Anomaly && day >= 1 && slot == 40 {
			if day == 15 {
				newSize = true
			} else {
				alarms++
			}
		}
	}
	if alarms > 3 {
		t.Errorf("the daily job alarmed %d times in 14 days, want at most 3", alarms)
	}
	if !newSize {
		t.Error("a spike of a new size did not alarm")
	}
}

func TestSpikeMemory(t *testing.T) {
	var s spikeMemory
	s.init(10, 1, 100)
	const mem, tol, rec = 100, 1, 0.2
	if s.recurring(20, true, 1, 0, mem, tol, 0, rec) {
		t.Error("first spike is recurring")
	}
	s.learn(20, true, 1, 0)
	s.learn(20.5, true, 2, 0)
	if !s.recurring(20.2, true, 3, 0, mem, tol, 0, rec) {
		t.Error("third spike of the same size is not recurring")
	}
	if s.recurring(20.2, false, 3, 0, mem, tol, 0, rec) {
		t.Error("a downward spike matched upward ones")
	}
	if s.recurring(20.8, true, 3, 0, mem, tol, 0, rec) {
		t.Error("a spike beyond every earlier one is recurring")
	}
	if s.recurring(20.2, true, 200, 0, mem, tol, 0, rec) {
		t.Error("forgotten spikes still make a spike recurring")
	}
	// At the same time of day (within an hour), a landing within the
	// relative tolerance is the same size; at another time it is not.
	s.init(10, 1, mem)
	s.learn(14, true, 1, 100)
	s.learn(15, true, 2, 250) // 250 is 35 minutes before midnight, 100 past 9 am
	s.learn(13.2, true, 3, 110)
	if s.recurring(13.8, true, 4, 105, mem, tol/4, 0, rec) {
		t.Error("recurring without the time of day and within the absolute tolerance of one landing only")
	}
	if !s.recurring(13.8, true, 4, 105, mem, tol/4, 0.8, rec) {
		t.Error("a landing at the time of day of two of the same size is not recurring")
	}
	if s.recurring(13.8, true, 4, 180, mem, tol/4, 0.8, rec) {
		t.Error("landings at another time of day made a spike recurring")
	}
	s.learn(14.2, true, 4, 3)
	if !s.recurring(14.8, true, 5, 5, mem, tol/8, 0.8, rec) {
		t.Error("the time of day does not wrap around midnight")
	}
	var enc encoder
	s.encode(&enc)
	var got spikeMemory
	d := decoder{b: enc.b}
	got.decode(&d)
	if err := d.end(); err != nil || got != s {
		t.Errorf("round trip: %v, %+v != %+v", err, got, s)
	}
	bad := enc.b
	bad[len(bad)-1] = spikeSlots // next slot out of range
	d = decoder{b: bad}
	got.decode(&d)
	if err := d.end(); !errors.Is(err, ErrBadState) {
		t.Errorf("corrupt slot: err = %v, want ErrBadState", err)
	}
}

// A bursty series (CPU busy for a few readings at random hours) whose
// bursts often end in two steps (90, then 40, then idle) alarms on its
// first bursts only: the partial returns towards the idle level are not
// spikes of a new size, and do not crowd the bursts out of the memory.
func TestBurstReturnsDoNotAlarm(t *testing.T) {
	const interval = int64(300_000) // five minutes
	const perDay = 288
	e := NewEnsemble(DefaultConfig())
	v := noisy(5, 10*perDay, 0)
	rng := uint64(12345)
	rnd := func() float64 { // xorshift, in [0, 1)
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return float64(rng>>11) / (1 << 53)
	}
	late := 0
	for i := 0; i < len(v); {
		x := 0.5 + 0.05*v[i]
		if i > 300 && rnd() < 0.02 { // a burst
			n := 3 + int(rnd()*4)
			for k := 0; k < n && i < len(v); k++ {
				if e.Update(t0+int64(i)*interval, 85+10*rnd()).Anomaly && i > 3*perDay {
					late++
				}
				i++
			}
			if i < len(v) && rnd() < 0.7 { // a partial return
				if e.Update(t0+int64(i)*interval, 10+60*rnd()).Anomaly && i > 3*perDay {
					late++
				}
				i++
			}
			continue
		}
		if e.Update(t0+int64(i)*interval, x).Anomaly && i > 3*perDay {
			late++
		}
		i++
	}
	if late > 2 {
		t.Errorf("usual bursts alarmed %d times after three days, want at most 2", late)
	}
}

func TestSpikeMemoryForgets(t *testing.T) {
	var s spikeMemory
	s.init(0, 1, 100)
	s.learn(5, true, 1, 0)
	s.learn(5, true, 2, 0)
	s.sweep(spikeSweep, 100) // every landing is older than the memory
	if s.used != 0 {
		t.Errorf("landings older than the memory were not swept: used %b", s.used)
	}
	// A slow clock (a week of readings every 100 ms) still spans the
	// memory without wrapping.
	mem := 7 * 86400 * 10.0
	s.init(0, 1, mem)
	if float64(uint64(spikeTicks)<<s.shift) <= mem {
		t.Fatalf("shift %d: the clock does not span the memory", s.shift)
	}
	s.learn(5, true, 1000, 0)
	s.learn(5, true, 2000, 0)
	if !s.recurring(5, true, uint32(mem/2), 0, mem, 0.1, 0, 0.1) {
		t.Error("landings within the memory were forgotten")
	}
	if s.recurring(5, true, uint32(mem)+5000, 0, mem, 0.1, 0, 0.1) {
		t.Error("landings beyond the memory were remembered")
	}
}

func TestHalfPrecision(t *testing.T) {
	for _, x := range []float64{0, 1, -1, 0.1, 1.0 / 3, 12.345, -7.5e-3, 1e-6, 3e-8, 1234.5, 65000, -65504} {
		got := halfToFloat(floatToHalf(x))
		if math.Abs(got-x) > math.Abs(x)/2048+1.0/(1<<25) {
			t.Errorf("half(%g) = %g", x, got)
		}
	}
	if got := halfToFloat(floatToHalf(1e9)); got != 65504 {
		t.Errorf("half(1e9) = %g, want saturation at 65504", got)
	}
	if got := halfToFloat(floatToHalf(-1e9)); got != -65504 {
		t.Errorf("half(-1e9) = %g, want saturation at -65504", got)
	}
}
