package detect

import (
	"errors"
	"testing"
)

func TestFamiliarWidens(t *testing.T) {
	tests := []struct {
		name   string
		values []float64 // learned in order, after init over [0, 8]
		probe  float64
		want   float64 // readings learned in probe's bin
	}{
		{"inside the warm-up range", []float64{1, 1.2, 1.4, 5}, 1.1, 3},
		{"far above: bins merge upwards", []float64{1, 1, 2, 100, 100}, 100, 2},
		{"far below: bins merge downwards", []float64{1, -500, -500, -500}, -500, 3},
		{"old counts survive widening", []float64{1, 1, 1, 1e6}, 1, 3},
		{"never seen", []float64{1, 2, 3}, 7.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f familiar
			f.init(0, 8, 0.01, true)
			for _, v := range tt.values {
				b, _, _ := f.lookup(t0, v)
				f.learn(t0, b)
			}
			total := 0.0
			for _, c := range f.n {
				total += c
			}
			if total != float64(len(tt.values)) {
				t.Errorf("total count %v, want %d", total, len(tt.values))
			}
			_, all, hour := f.lookup(t0, tt.probe)
			if all != tt.want || hour != tt.want {
				t.Errorf("count at %v = %v (this hour %v), want %v", tt.probe, all, hour, tt.want)
			}
			if _, _, other := f.lookup(t0+3_600_000, tt.probe); tt.want > 0 && other != 0 {
				t.Errorf("count at %v an hour later = %v, want 0 (another hour of the day)", tt.probe, other)
			}
		})
	}
}

func TestFamiliarCodec(t *testing.T) {
	for _, seasonal := range []bool{false, true} {
		var f familiar
		f.init(-3, 3, 0.01, seasonal)
		for i := range 500 {
			v := float64(i%40) - 20
			b, _, _ := f.lookup(int64(i)*600_000, v)
			f.learn(int64(i)*600_000, b)
		}
		var enc encoder
		f.encode(&enc)
		var g familiar
		dec := decoder{b: enc.b}
		g.decode(&dec)
		if err := dec.end(); err != nil {
			t.Fatalf("seasonal=%v: decode: %v", seasonal, err)
		}
		if g.lo != f.lo || g.step != f.step || g.n != f.n || len(g.hours) != len(f.hours) {
			t.Fatalf("seasonal=%v: decoded %+v, want %+v", seasonal, g, f)
		}
		for i := range f.hours {
			if g.hours[i] != f.hours[i] {
				t.Fatalf("seasonal=%v: hour count %d = %d, want %d", seasonal, i, g.hours[i], f.hours[i])
			}
		}
		dec = decoder{b: enc.b[:len(enc.b)-1]}
		g.decode(&dec)
		if err := dec.end(); !errors.Is(err, ErrBadState) {
			t.Errorf("seasonal=%v: truncated: err = %v, want ErrBadState", seasonal, err)
		}
	}
}
