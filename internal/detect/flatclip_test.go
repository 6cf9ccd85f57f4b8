package detect

import (
	"slices"
	"testing"
)

// TestFlatLineRecurringClip checks that a sensor clipping at the same value
// (a floor or ceiling of its range) again and again raises the flat-line
// alarm once, while a stuck run at another value still alarms.
func TestFlatLineRecurringClip(t *testing.T) {
	tests := []struct {
		name      string
		secondVal float64 // value of the later stuck runs; 0 means the clip level
		want      int     // flat-line alarms over the three runs
	}{
		{"same value recurs", 0, 1},
		{"another value", 103.5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := noisy(7, 6000, 100)
			const clip = 96.0
			for k, at := range []int{2000, 3000, 4000} {
				val := clip
				if k > 0 && tt.secondVal != 0 {
					val = tt.secondVal + float64(k)
				}
				for i := at; i < at+200; i++ {
					v[i] = val
				}
			}
			e := NewEnsemble(DefaultConfig())
			flats := 0
			for i, x := range v {
				r := e.Update(t0+int64(i)*step, x)
				if r.Anomaly && slices.Contains(r.Detectors, DetFlat) {
					if i < 2000 {
						t.Fatalf("flat-line alarm at %d, before any stuck run", i)
					}
					flats++
				}
			}
			if flats != tt.want {
				t.Errorf("flat-line alarms = %d, want %d", flats, tt.want)
			}
		})
	}
}
