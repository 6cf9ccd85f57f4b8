package detect

import (
	"errors"
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
	s.init(10)
	const mem, tol, rec = 100, 1, 0.2
	if s.recurring(20, true, 1, mem, tol, rec) {
		t.Error("first spike is recurring")
	}
	s.learn(20, true, 1)
	s.learn(20.5, true, 2)
	if !s.recurring(20.2, true, 3, mem, tol, rec) {
		t.Error("third spike of the same size is not recurring")
	}
	if s.recurring(20.2, false, 3, mem, tol, rec) {
		t.Error("a downward spike matched upward ones")
	}
	if s.recurring(20.8, true, 3, mem, tol, rec) {
		t.Error("a spike beyond every earlier one is recurring")
	}
	if s.recurring(20.2, true, 200, mem, tol, rec) {
		t.Error("forgotten spikes still make a spike recurring")
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
