package detect

import (
	"math/rand/v2"
	"testing"
)

func TestZZSkabLike(t *testing.T) {
	tp, fp, fn := 0, 0, 0
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 99))
		k := 8
		names := []string{"a1", "a2", "cur", "pr", "temp", "tc", "volt", "flow"}
		d := NewDeviceDetector(DefaultDeviceConfig(), names)
		drv := 0.0
		from, to := 500+rng.IntN(200), 0
		to = from + 200 + rng.IntN(200)
		mag := 1 + 2*rng.Float64()
		sens := rng.Perm(k)[:1+rng.IntN(3)]
		first, maxR := -1, 0.0
		defer func() {}()
		for i := range 1100 {
			drv = 0.98*drv + 0.2*rng.NormFloat64()
			row := make([]float64, k)
			for j := range row {
				row[j] = 10*float64(j+1) + float64(j%3)*drv + rng.NormFloat64()
			}
			anom := i >= from && i < to
			if anom {
				for _, j := range sens {
					row[j] += mag
				}
			}
			r := d.Update(int64(i)*1000, row)
			if seed == 11 && i >= from-3 && i < from+40 && i%3 == 0 {
				j := sens[0]
				t.Logf("row %d score %.2f mu %.2f z %.2f nsc %.2f gain %.2f crossSD %.2f sd %.2f base %.2f trend %v | cross mu %.2f z %.2f", i, r.Score, d.mu[j], d.z[j], d.nsc[j], d.gain[j], d.crossSD[j], d.sd[j], d.base[j], d.trend[j], d.mu[k+j], d.z[k+j])
			}
			if anom && first < 0 && r.Anomaly {
				first = i
			}
			if anom {
				maxR = max(maxR, r.Score)
			}
			if i == 1099 && seed < 12 {
				ml, cl := d.Limits()
				t.Logf("seed %d mag %.2f sens %v from %d first %d maxScore %.2f limits %.1f %.1f lift %.2f", seed, mag, sens, from, first, maxR, ml, cl, d.lift)
			}
			switch {
			case r.Anomaly && anom:
				tp++
			case r.Anomaly:
				fp++
			case anom:
				fn++
			}
		}
	}
	p, r := float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn)
	t.Logf("row P %.3f R %.3f F1 %.3f", p, r, 2*p*r/(p+r))
}
