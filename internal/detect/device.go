package detect

import (
	"fmt"
	"math"
	"slices"
)

const (
	deviceKind       = 'D'
	deviceVersion    = 5
	maxDeviceWarmup  = 5000
	maxSensors       = 256
	minCUSUMLimit    = 20
	crossMinR2       = 0.8
	crossResidFloor  = 0.2
	trendMinR2       = 0.6
	fastEndAlpha     = 0.3
	endBand          = 1.5 // noise units: a stream this close to baseline is "back"
	cusumCapMultiple = 2
	explainedDamp    = 1.5
	noiseAlpha       = 0.002
	noiseClip        = 4     // deviations are clipped to noiseClip noise units when learning
	alarmLearn       = 0.25  // learning rate during an alarm, relative to outside
	liftDecay        = 0.01  // fall rate of the limit multiplier relative to its rise
	liftDoubling     = 2     // warm-ups of continuous exceedance that double the limits
	gainAlpha        = 0.001 // learning rate of the live gain (memory ~1000 rows)
	gainClip         = 1.5   // MEWMA deviations are clipped to gainClip live gains when learning
	cusumLam         = 0.02  // weight of the EWMA that measures a stream's spread at the CUSUM's time scale
	slowGainRate     = 0.5   // learning rate of the CUSUM's live gain relative to the MEWMA's
	coldGain         = 1.3   // live gain of a detector fresh from warm-up: cold means conservative
	spikeMADs        = 20    // a warm-up reading this many robust noise scales off its column's median is a glitch
	stayRatio        = 0.7   // an alarm stays on while the stream that started it is over this share of its limit
	staleMemories    = 6     // memories of the slow baselines after which an alarm's frozen baselines are stale
)

// DeviceDetector is the multivariate streaming detector of one device across
// its sensors (statistical process control). Each sensor is standardised
// against the warm-up, with a relative noise floor; sensors that trend during
// the warm-up follow a Holt (level + slope) baseline instead of a fixed mean.
// When sensors are correlated, a ridge regression of each sensor on the
// others (fitted on the warm-up) adds a residual stream that catches a
// correlation break. Every stream feeds a MEWMA and a two-sided CUSUM; the
// statistic is the max over streams, the control limits come from a high
// quantile of the warm-up statistic times a margin. An alarm is held while
// the statistic stays over the limit, plus Hold rows, and ends early when the
// streams are back at baseline (reverse change point).
//
// A DeviceDetector is not safe for concurrent use. Its state is O(k²) for k
// sensors after warm-up.
type DeviceDetector struct {
	cfg     DeviceConfig
	sensors []string
	k       int

	rows int64
	warm []float64 // warm-up rows, row-major k values each; nil after warm-up

	base, slope, sd []float64 // per sensor baseline, slope per row, noise
	trend           []bool
	beta            []float64 // k×k, beta[i*k+j]: weight of sensor j in predicting i
	crossSD         []float64 // residual noise of each cross stream; 0 = off
	lastX           []float64 // last standardised value per sensor

	z, fast, cp, cn []float64 // per stream (2k): MEWMA, fast EWMA, CUSUM sums
	gain            []float64 // per stream (2k): warm-up spread of the MEWMA relative to white noise (≥ 1)
	mu, muSlope     []float64 // per stream (2k): slow Holt baseline (level, slope), frozen during an alarm
	nsc             []float64 // per stream (2k): live noise scale relative to warm-up (≥ 1 when used)
	zs, msz         []float64 // per stream (2k): live MEWMA before the live gain, and its mean square in white-noise units (the live gain squared, ≥ 1)
	zc, msc         []float64 // per stream (2k): the same at the CUSUM's slower time scale
	limit, climit   float64
	perStream       [][]float64 // during fit only: per-stream statistics
	perStreamC      [][]float64 // during fit only: per-stream slow EWMA in white-noise units
	inAlarm         bool
	quiet           int     // rows under the limits while in alarm
	back            int     // rows with every stream back at baseline while in alarm
	alarmRows       int     // rows of the current alarm
	rebase          bool    // the next row resets every stream's baseline to itself
	sinceEnd        int     // rows since the last alarm ended
	lift            float64 // learned multiplier (≥ 1) of the control limits
	settled         bool    // the last alarm ended at MaxAlarm and no onset followed yet
	alarmArg        int     // the stream that started the current alarm

	warmT []int64 // warm-up row times (Unix ms); nil after warm-up
	// warmTarget caches warmRows (derived from warmT, not encoded).
	warmTarget int
	trendA     float64 // per-row weight of the slow baselines, from TrendSeconds

	fam     []familiar // per sensor: histogram of the values learned as normal
	wlo     []float64  // per sensor: warm-up minimum
	whi     []float64  // per sensor: warm-up maximum
	famBin  []int      // scratch, per sensor: the bin of the current value
	famDamp []float64  // scratch, per sensor: familiarity (0..1) of the current value
}

// NewDeviceDetector returns a detector for the named sensors, in the order
// of the values passed to Update. It panics if cfg does not validate or there
// are no sensors or more than 256.
func NewDeviceDetector(cfg DeviceConfig, sensors []string) *DeviceDetector {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if len(sensors) == 0 || len(sensors) > maxSensors {
		panic(fmt.Sprintf("detect: %d sensors, want 1..%d", len(sensors), maxSensors))
	}
	k := len(sensors)
	d := &DeviceDetector{cfg: cfg, sensors: slices.Clone(sensors), k: k, sinceEnd: math.MaxInt32, alarmArg: -1}
	d.alloc()
	return d
}

func (d *DeviceDetector) alloc() {
	k := d.k
	d.base, d.slope, d.sd = make([]float64, k), make([]float64, k), make([]float64, k)
	d.trend = make([]bool, k)
	d.beta, d.crossSD, d.lastX = make([]float64, k*k), make([]float64, k), make([]float64, k)
	d.z, d.fast = make([]float64, 2*k), make([]float64, 2*k)
	d.cp, d.cn = make([]float64, 2*k), make([]float64, 2*k)
	d.gain = make([]float64, 2*k)
	d.mu, d.muSlope = make([]float64, 2*k), make([]float64, 2*k)
	d.nsc = make([]float64, 2*k)
	d.zs, d.msz = make([]float64, 2*k), make([]float64, 2*k)
	d.zc, d.msc = make([]float64, 2*k), make([]float64, 2*k)
	d.fam, d.famBin, d.famDamp = make([]familiar, k), make([]int, k), make([]float64, k)
	d.wlo, d.whi = make([]float64, k), make([]float64, k)
	d.lift = 1
	for i := range d.gain {
		d.gain[i] = 1
	}
}

// Sensors returns the sensor names in Update order.
func (d *DeviceDetector) Sensors() []string { return slices.Clone(d.sensors) }

// Warm reports whether the warm-up is over.
func (d *DeviceDetector) Warm() bool { return d.warm == nil && d.rows >= int64(d.cfg.Warmup) }

// Limits returns the MEWMA and CUSUM control limits learned at warm-up.
func (d *DeviceDetector) Limits() (mewma, cusum float64) { return d.limit, d.climit }

// Update scores one row: vals[i] is the reading of sensor i at time t (Unix
// milliseconds); NaN marks a missing reading. Missing trailing values may be
// omitted. A row with no valid value changes nothing.
func (d *DeviceDetector) Update(t int64, vals []float64) Result {
	row := make([]float64, d.k)
	valid := 0
	for i := range row {
		row[i] = math.NaN()
		if i < len(vals) && !math.IsInf(vals[i], 0) {
			row[i] = vals[i]
		}
		if !math.IsNaN(row[i]) {
			valid++
		}
	}
	if valid == 0 {
		return Result{}
	}
	d.rows++
	if !d.Warm() {
		d.warm = append(d.warm, row...)
		d.warmT = append(d.warmT, t)
		if d.rows >= int64(d.cfg.Warmup) && d.rows >= int64(d.warmRows()) {
			d.fit()
		}
		return Result{}
	}
	return d.step(row, true)
}

// warmRows returns the length of the warm-up in rows: Warmup, extended to
// cover WarmupSeconds of wall time (at the median reporting interval of the
// first Warmup rows) when that takes no more than maxDeviceWarmup rows. A
// device reporting every minute then learns a whole day, night and working
// hours, before it scores; one reporting every second, for which a day is
// out of reach, keeps Warmup rows. It is 0 until Warmup rows are in.
func (d *DeviceDetector) warmRows() int {
	if d.warmTarget > 0 || len(d.warmT) < d.cfg.Warmup {
		return d.warmTarget
	}
	d.warmTarget = d.cfg.Warmup
	if d.cfg.WarmupSeconds > 0 {
		if iv := medianInterval(d.warmT[:d.cfg.Warmup]); iv > 0 {
			if n := math.Ceil(d.cfg.WarmupSeconds / iv); n <= maxDeviceWarmup {
				d.warmTarget = max(d.cfg.Warmup, int(n))
			}
		}
	}
	return d.warmTarget
}

// medianInterval returns the median positive interval, in seconds, between
// consecutive times ts (Unix ms), or 0 if there is none.
func medianInterval(ts []int64) float64 {
	dts := make([]float64, 0, len(ts))
	for i := 1; i < len(ts); i++ {
		if dt := ts[i] - ts[i-1]; dt > 0 {
			dts = append(dts, float64(dt))
		}
	}
	if len(dts) == 0 {
		return 0
	}
	return quantile(dts, 0.5) / 1000
}

// fit learns baselines, noise, trends, the cross model and control limits
// from the warm-up rows, then frees them.
func (d *DeviceDetector) fit() {
	k, n := d.k, len(d.warm)/d.k
	d.trendA = d.cfg.TrendLambda
	if d.cfg.TrendSeconds > 0 && len(d.warmT) > 1 {
		// The median reporting interval of the warm-up sets the per-row
		// weight of a baseline with a memory of TrendSeconds.
		if iv := medianInterval(d.warmT); iv > 0 {
			d.trendA = min(d.cfg.TrendLambda, max(iv/d.cfg.TrendSeconds, 1e-6))
		}
	}
	d.warmT = nil
	col := make([]float64, n)
	for i := range k {
		// Fill gaps with the previous valid value (or the first valid one).
		first := math.NaN()
		for r := range n {
			if v := d.warm[r*k+i]; !math.IsNaN(v) {
				first = v
				break
			}
		}
		if math.IsNaN(first) {
			first = 0
		}
		last := first
		for r := range n {
			if v := d.warm[r*k+i]; !math.IsNaN(v) {
				last = v
			}
			col[r] = last
		}
		// A glitch (one misreading) must not set the noise scale, the
		// baselines or the control limits for the device's whole life.
		despike(col)
		for r := range n {
			if !math.IsNaN(d.warm[r*k+i]) {
				d.warm[r*k+i] = col[r]
			}
		}
		mean, lo, hi := 0.0, col[0], col[0]
		for _, v := range col {
			mean += v
			lo, hi = min(lo, v), max(hi, v)
		}
		mean /= float64(n)
		// Linear trend against the row index.
		mx := float64(n-1) / 2
		sxx, sxy, syy := 0.0, 0.0, 0.0
		for r, v := range col {
			dx, dy := float64(r)-mx, v-mean
			sxx += dx * dx
			sxy += dx * dy
			syy += dy * dy
		}
		b := 0.0
		if sxx > 0 {
			b = sxy / sxx
		}
		r2 := 0.0
		if syy > 0 {
			r2 = b * sxy / syy
		}
		floor := max(d.cfg.NoiseFloor*math.Abs(mean), 0.01*(hi-lo), 1e-9)
		d.fam[i].init(lo, hi, floor, false)
		d.wlo[i], d.whi[i] = lo, hi
		for r := range n {
			if v := d.warm[r*k+i]; !math.IsNaN(v) {
				b, _, _ := d.fam[i].lookup(0, v)
				d.fam[i].learn(0, b)
			}
		}
		if r2 >= trendMinR2 {
			d.trend[i] = true
			d.slope[i] = b
			res := 0.0
			for r, v := range col {
				e := v - (mean + b*(float64(r)-mx))
				res += e * e
			}
			d.sd[i] = max(math.Sqrt(res/float64(n)), floor)
			d.base[i] = mean + b*(float64(n-1)-mx)
		} else {
			d.base[i] = mean
			d.sd[i] = max(math.Sqrt(syy/float64(n)), floor)
		}
		// Standardise the warm-up column in place for the cross model.
		for r, v := range col {
			expect := d.base[i]
			if d.trend[i] {
				expect = mean + b*(float64(r)-mx)
			}
			d.warm[r*k+i] = (v - expect) / d.sd[i]
		}
	}
	if d.cfg.CrossModel && k >= 2 {
		d.fitCross(n)
	}

	// Replay the warm-up once to learn each stream's gain: how much wider
	// its MEWMA swings than white noise would (autocorrelation, a factor
	// the warm-up only partly saw), then again to set the control limits.
	per, perC := make([][]float64, 2*k), make([][]float64, 2*k)
	d.perStream, d.perStreamC = per, perC
	for r := range n {
		d.streams(d.warm[r*k : (r+1)*k])
	}
	d.perStream, d.perStreamC = nil, nil
	for s, xs := range per {
		// The root mean square is 1 for white noise, and estimated more
		// stably than a high quantile from a short autocorrelated warm-up.
		if len(xs) > 0 {
			ss := 0.0
			for _, x := range xs {
				ss += x * x
			}
			d.gain[s] = max(1, math.Sqrt(ss/float64(len(xs))))
		}
		// The warm-up's spread at the CUSUM's slower time scale, relative
		// to the MEWMA's gain, starts the CUSUM's live gain; a cold
		// detector is at least coldGain conservative.
		if xs := perC[s]; len(xs) > 0 {
			ss := 0.0
			for _, x := range xs {
				ss += x * x
			}
			d.msc[s] = max(coldGain*coldGain, ss/float64(len(xs))/(d.gain[s]*d.gain[s]))
		}
	}
	clear(d.zc)
	clear(d.z)
	clear(d.fast)
	clear(d.cp)
	clear(d.cn)
	clear(d.mu)
	clear(d.muSlope)
	stats := make([]float64, 0, n)
	cstats := make([]float64, 0, n)
	for r := range n {
		m, c := d.streams(d.warm[r*k : (r+1)*k])
		stats = append(stats, m)
		cstats = append(cstats, c)
	}
	d.limit = max(quantile(stats, d.cfg.Quantile)*d.cfg.Margin, d.cfg.MinLimit)
	d.climit = max(quantile(cstats, d.cfg.Quantile)*2*d.cfg.Margin, minCUSUMLimit)
	d.warm = nil // the streams carry on from the replay: no start-up transient
}

// fitCross fits, for each sensor, a ridge regression on the other sensors
// over the standardised warm-up rows in d.warm.
func (d *DeviceDetector) fitCross(n int) {
	k := d.k
	m := k - 1
	a := make([]float64, m*m)
	rhs := make([]float64, m)
	idx := make([]int, 0, m)
	for i := range k {
		idx = idx[:0]
		for j := range k {
			if j != i {
				idx = append(idx, j)
			}
		}
		clear(a)
		clear(rhs)
		syy := 0.0
		for r := range n {
			x := d.warm[r*k : (r+1)*k]
			syy += x[i] * x[i]
			for p, jp := range idx {
				rhs[p] += x[jp] * x[i]
				for q, jq := range idx {
					a[p*m+q] += x[jp] * x[jq]
				}
			}
		}
		ridge := 0.05 * float64(n)
		for p := range m {
			a[p*m+p] += ridge
		}
		beta, ok := solve(slices.Clone(a), slices.Clone(rhs), m)
		if !ok || syy == 0 {
			continue
		}
		res := 0.0
		for r := range n {
			x := d.warm[r*k : (r+1)*k]
			pred := 0.0
			for p, jp := range idx {
				pred += beta[p] * x[jp]
			}
			res += (x[i] - pred) * (x[i] - pred)
		}
		if 1-res/syy < crossMinR2 {
			continue
		}
		for p, jp := range idx {
			d.beta[i*k+jp] = beta[p]
		}
		d.crossSD[i] = max(math.Sqrt(res/float64(n)), crossResidFloor)
	}
}

// solve solves the m×m system a·x = b by Gaussian elimination with partial
// pivoting; a and b are overwritten.
func solve(a, b []float64, m int) ([]float64, bool) {
	for c := range m {
		p := c
		for r := c + 1; r < m; r++ {
			if math.Abs(a[r*m+c]) > math.Abs(a[p*m+c]) {
				p = r
			}
		}
		if math.Abs(a[p*m+c]) < 1e-12 {
			return nil, false
		}
		if p != c {
			for q := range m {
				a[c*m+q], a[p*m+q] = a[p*m+q], a[c*m+q]
			}
			b[c], b[p] = b[p], b[c]
		}
		for r := c + 1; r < m; r++ {
			f := a[r*m+c] / a[c*m+c]
			for q := c; q < m; q++ {
				a[r*m+q] -= f * a[c*m+q]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, m)
	for r := m - 1; r >= 0; r-- {
		s := b[r]
		for q := r + 1; q < m; q++ {
			s -= a[r*m+q] * x[q]
		}
		x[r] = s / a[r*m+r]
	}
	return x, true
}

// despike replaces, in place, the glitches of a warm-up column (readings
// more than spikeMADs robust noise scales off the column's median, a
// sensor misreading) by the previous reading. The scale is the larger of
// the normal equivalents of the median and the 90th percentile absolute
// deviation: a quantised sensor that sits on one level for most of the
// warm-up has a tiny median deviation, and its other levels are not
// glitches.
func despike(col []float64) {
	if len(col) < 3 {
		return
	}
	med := quantile(col, 0.5)
	dev := make([]float64, len(col))
	for r, v := range col {
		dev[r] = math.Abs(v - med)
	}
	scale := max(quantile(dev, 0.5)*sigmaPerMAD, quantile(dev, 0.9)/1.645)
	if !(scale > 0) {
		return
	}
	for r, v := range col {
		if math.Abs(v-med) > spikeMADs*scale {
			if r > 0 {
				col[r] = col[r-1]
			} else {
				col[r] = med
			}
		}
	}
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// streams updates the MEWMA and CUSUM of every stream with the standardised
// row x (NaN = missing) and returns the MEWMA statistic and the largest CUSUM.
func (d *DeviceDetector) streams(x []float64) (float64, float64) {
	st, c, _ := d.streamsArg(x)
	return st, c
}

// streamScore is the live outcome of one row over the streams: the largest
// ratio of a stream's statistic to its (lifted) control limit, the stream
// attaining it and whether its CUSUM rather than its MEWMA did.
type streamScore struct {
	ratio float64
	arg   int
	cusum bool
}

// streamsArg updates every stream with the standardised row x and returns
// the MEWMA statistic, the largest CUSUM and, once the limits are set, the
// live stream score against the lifted control limits.
func (d *DeviceDetector) streamsArg(x []float64) (stat, cus float64, sc streamScore) {
	k := d.k
	lam := d.cfg.Lambda
	norm := math.Sqrt(lam / (2 - lam))
	normC := math.Sqrt(cusumLam / (2 - cusumLam))
	capC := cusumCapMultiple * max(d.climit, minCUSUMLimit)
	sc.arg = -1
	live := d.limit > 0 && d.perStream == nil
	upd := func(s int, v float64) {
		if !d.inAlarm {
			d.mu[s] += d.muSlope[s]
		}
		if d.rebase {
			d.mu[s], d.z[s], d.fast[s] = v, 0, 0
		}
		v -= d.mu[s]
		if !d.inAlarm {
			// The slow baseline absorbs drifts slower than TrendLambda.
			lb := d.trendA
			e := min(max(v, -endBand), endBand)
			d.mu[s] += lb * e
			d.muSlope[s] += lb * lb * e
		}
		v /= d.gain[s]
		if d.perStream == nil {
			// The noise scale keeps learning, slowly and from clipped
			// deviations, so a stream whose noise grows as the process
			// leaves the warm-up's conditions does not alarm for ever. It
			// learns during an alarm too, at a quarter of the rate: a
			// detector whose warm-up saw too little variation must not
			// deadlock in one endless alarm.
			if d.nsc[s] == 0 {
				d.nsc[s] = 1
			}
			na := noiseAlpha
			if d.inAlarm {
				na *= alarmLearn
			}
			a := min(math.Abs(v), noiseClip*max(d.nsc[s], 1))
			d.nsc[s] += na * (sigmaPerMAD*a - d.nsc[s])
		}
		v /= max(d.nsc[s], 1)
		g, gc := 1.0, 1.0
		d.zc[s] += cusumLam * (v - d.zc[s])
		if d.perStream != nil {
			d.perStreamC[s] = append(d.perStreamC[s], math.Abs(d.zc[s])/normC)
		}
		if d.perStream == nil {
			// The live gains: the warm-up saw a few minutes of the
			// process, too little to know how far it wanders at the
			// baselines' time scale. The mean square of an EWMA of the
			// stream at the MEWMA's time scale (g) and at the CUSUM's
			// slower one (gc, started from the warm-up's own spread in
			// fit) keeps learning, slowly, clipped and a quarter as fast
			// during an alarm, how much wider than white noise the stream
			// swings; each statistic sees the stream in its own units. A
			// cold detector starts from a conservative prior.
			if d.msz[s] == 0 {
				d.msz[s] = coldGain * coldGain
			}
			if d.msc[s] == 0 {
				d.msc[s] = coldGain * coldGain
			}
			d.zs[s] += lam * (v - d.zs[s])
			ga := gainAlpha
			if d.inAlarm {
				ga *= alarmLearn
			}
			g, gc = math.Sqrt(d.msz[s]), math.Sqrt(d.msc[s])
			e := min(math.Abs(d.zs[s])/norm, gainClip*g)
			d.msz[s] = max(1, d.msz[s]+ga*(e*e-d.msz[s]))
			e = min(math.Abs(d.zc[s])/normC, gainClip*gc)
			d.msc[s] = max(1, d.msc[s]+slowGainRate*ga*(e*e-d.msc[s]))
			gc = max(g, gc)
		}
		vc := v / gc
		v /= g
		d.z[s] += lam * (v - d.z[s])
		d.fast[s] += fastEndAlpha * (v - d.fast[s])
		d.cp[s] = min(max(0, d.cp[s]+vc-d.cfg.CUSUMK), capC)
		d.cn[s] = min(max(0, d.cn[s]-vc-d.cfg.CUSUMK), capC)
		m := math.Abs(d.z[s]) / norm
		if d.perStream != nil {
			d.perStream[s] = append(d.perStream[s], m)
		}
		c := max(d.cp[s], d.cn[s])
		if s < k && live {
			// A sensor at a level it has occupied for a sustained time
			// before is not a deviation by itself (a working day's load
			// the warm-up did not see); its cross residual still watches
			// whether the other sensors agree.
			m *= 1 - d.famDamp[s]
			c *= 1 - d.famDamp[s]
		}
		if s < k && d.crossSD[s] > 0 {
			// A sensor the others explain is watched closely by its
			// cross residual; its raw deviation must be larger to count.
			m /= explainedDamp
			c /= explainedDamp
		}
		stat = max(stat, m)
		cus = max(cus, c)
		if !live {
			return
		}
		rm, rc := m/d.limit/d.lift, c/d.climit/d.lift
		if r := max(rm, rc); r > sc.ratio {
			sc = streamScore{ratio: r, arg: s, cusum: rc > rm}
		}
	}
	for i := range k {
		if !math.IsNaN(x[i]) {
			d.lastX[i] = x[i]
			upd(i, x[i])
		}
	}
	for i := range k {
		if d.crossSD[i] == 0 || math.IsNaN(x[i]) {
			continue
		}
		pred := 0.0
		for j := range k {
			pred += d.beta[i*k+j] * d.lastX[j]
		}
		upd(k+i, (x[i]-pred)/d.crossSD[i])
	}
	return stat, cus, sc
}

// step scores one live row.
func (d *DeviceDetector) step(row []float64, live bool) Result {
	k := d.k
	x := make([]float64, k)
	for i, v := range row {
		if math.IsNaN(v) {
			x[i] = math.NaN()
			continue
		}
		if d.trend[i] {
			d.base[i] += d.slope[i]
		}
		x[i] = (v - d.base[i]) / d.sd[i]
		if d.trend[i] && !d.inAlarm {
			// Holt baseline: level and slope follow the sensor slowly.
			lam := d.trendA
			err := v - d.base[i]
			d.base[i] += lam * err
			d.slope[i] += lam * lam * err
		}
	}
	full := famFull * float64(d.cfg.Warmup)
	for i, v := range row {
		d.famBin[i], d.famDamp[i] = -1, 0
		if !math.IsNaN(v) {
			var cnt float64
			d.famBin[i], cnt, _ = d.fam[i].lookup(0, v)
			d.famDamp[i] = min(cnt/full, 1)
			if v >= d.wlo[i] && v <= d.whi[i] {
				// Inside the warm-up range the MEWMA keeps some of its
				// sensitivity to small persistent shifts.
				d.famDamp[i] *= 0.5
			}
		}
	}
	_, _, sc := d.streamsArg(x)
	d.rebase = false
	ratio, arg := sc.ratio, sc.arg
	over := ratio > 1
	if !over && !d.inAlarm {
		// Only rows that raise no alarm teach what is normal, so a shift
		// or a drift stays unfamiliar.
		for i, b := range d.famBin {
			d.fam[i].learn(0, b)
		}
	}
	// The limits learn the process's own extremes: every row over them
	// raises them a little (doubling over liftDoubling warm-ups of
	// exceedance), every row under them lowers them liftDecay times slower,
	// down to the warm-up limits. A recurring pattern the warm-up did not
	// see (a daily load cycle) stops alarming after its first occurrences,
	// and a detector whose warm-up saw too little variation cannot stay in
	// one endless alarm.
	up := math.Ln2 / float64(liftDoubling*d.cfg.Warmup)
	if over {
		d.lift *= math.Exp(up)
	} else {
		d.lift = max(1, d.lift*math.Exp(-up*liftDecay))
	}
	if !d.inAlarm && d.sinceEnd < math.MaxInt32 {
		d.sinceEnd++
	}
	onset := over && !d.inAlarm && d.sinceEnd > d.cfg.Rest
	// Hysteresis: an alarm, once on, stays on while the stream that
	// started it stays over stayRatio of its limit. A small persistent
	// shift (a valve partly closed) keeps its statistic flickering around
	// the limit; a fixed hold would split it into fragments and lose most
	// of its rows. Another stream nearing its limit (a slow wander of a
	// sensor against the baselines frozen by the alarm) does not hold it.
	stay := d.inAlarm && ratio > stayRatio && arg == d.alarmArg
	if over && !d.inAlarm {
		d.alarmArg = arg
	}
	if over || stay {
		d.inAlarm = true
		d.quiet = 0
	} else if d.inAlarm {
		d.quiet++
		if d.quiet > d.cfg.Hold {
			d.endAlarm()
		}
	}
	if d.inAlarm {
		d.alarmRows++
		if d.alarmRows > d.cfg.MaxAlarm {
			// A change that lasts is the new normal.
			d.endAlarm()
			d.rebase, d.settled = true, true
		}
	}
	if d.inAlarm {
		// The reverse change point: every stream's fast EWMA back near its
		// baseline. A shift smaller than endBand is not back while the
		// stream that started the alarm stays over stayRatio of its limit,
		// as long as the baselines, frozen during the alarm, are fresh
		// (fewer than staleMemories of their memory, TrendSeconds of wall
		// time, since the onset). Later, a residual deviation is as likely
		// the process's own slow drift away from stale baselines, and the
		// fast streams alone end the alarm, before it raises the limits.
		fresh := float64(d.alarmRows)*d.trendA <= staleMemories
		backNow := !fresh || ratio <= stayRatio || arg != d.alarmArg
		for s := range d.fast {
			if math.Abs(d.fast[s]) > endBand {
				backNow = false
				break
			}
		}
		if backNow {
			d.back++
		} else {
			d.back = 0
		}
		if d.back > d.cfg.Hold {
			d.endAlarm()
		}
	}
	score := min(0.5*ratio, 1)
	if onset {
		d.settled = false
	}
	if !d.inAlarm || d.settled {
		// After an alarm that lasted MaxAlarm rows, the process has
		// settled into a new normal: only a fresh onset (after Rest rows)
		// raises a new alarm. Its score is scaled down like a univariate
		// rest period, so a scorer thresholding the score under 0.5 does
		// not flag the whole settled stretch.
		score = min(score, math.Nextafter(0.5, 0))
		if d.inAlarm || over {
			score *= restScale
		}
		return Result{Score: score}
	}
	res := Result{Score: max(score, 0.5), Anomaly: true, Onset: onset, Severity: SeverityWarning}
	if score >= 0.8 {
		res.Severity = SeverityCritical
	}
	switch {
	case !sc.cusum && arg >= k:
		res.Detectors = []string{DetCross, DetMEWMA}
	case !sc.cusum:
		res.Detectors = []string{DetMEWMA}
	case arg >= k:
		res.Detectors = []string{DetCross, DetCUSUM}
	default:
		res.Detectors = []string{DetCUSUM}
	}
	if arg >= 0 {
		res.Sensors = []string{d.sensors[arg%k]}
	}
	return res
}

// endAlarm closes the alarm and restarts the change statistics, so the next
// alarm needs fresh evidence.
func (d *DeviceDetector) endAlarm() {
	d.inAlarm, d.quiet, d.back, d.alarmRows, d.sinceEnd = false, 0, 0, 0, 0
	clear(d.z)
	clear(d.cp)
	clear(d.cn)
}

// MarshalBinary encodes the state of d (not its Config) including the sensor
// names. The format is described in doc.go.
func (d *DeviceDetector) MarshalBinary() ([]byte, error) {
	enc := encoder{}
	enc.header(deviceKind, deviceVersion)
	enc.u32(uint32(d.k))
	for _, s := range d.sensors {
		enc.str(s)
	}
	enc.i64(d.rows)
	enc.boolean(d.warm != nil)
	enc.f64s(d.warm)
	enc.u32(uint32(len(d.warmT)))
	for _, t := range d.warmT {
		enc.i64(t)
	}
	enc.f64(d.trendA)
	for _, fs := range [][]float64{d.base, d.slope, d.sd, d.beta, d.crossSD, d.lastX, d.z, d.fast, d.cp, d.cn, d.gain, d.mu, d.muSlope, d.nsc, d.zs, d.msz, d.zc, d.msc, d.wlo, d.whi} {
		enc.f64s(fs)
	}
	for _, b := range d.trend {
		enc.boolean(b)
	}
	enc.f64(d.limit)
	enc.f64(d.climit)
	enc.boolean(d.inAlarm)
	enc.u32(uint32(d.quiet))
	enc.u32(uint32(d.back))
	enc.u32(uint32(d.alarmRows))
	enc.boolean(d.rebase)
	enc.u32(uint32(d.sinceEnd))
	enc.f64(d.lift)
	enc.boolean(d.settled)
	enc.u32(uint32(d.alarmArg + 1))
	for i := range d.fam {
		d.fam[i].encode(&enc)
	}
	return enc.b, nil
}

// UnmarshalBinary restores state written by MarshalBinary into d, keeping
// d's Config. The saved sensor list replaces d's.
func (d *DeviceDetector) UnmarshalBinary(data []byte) error {
	dec := decoder{b: data}
	dec.header(deviceKind, deviceVersion)
	k := int(dec.u32())
	if dec.err == nil && (k < 1 || k > maxSensors) {
		return fmt.Errorf("%w: %d sensors", ErrBadState, k)
	}
	s := DeviceDetector{cfg: d.cfg, k: k}
	for range k {
		s.sensors = append(s.sensors, dec.str(1<<16))
	}
	s.rows = dec.i64()
	hasWarm := dec.boolean()
	s.warm = dec.f64s(maxDeviceWarmup * maxSensors)
	switch {
	case !hasWarm:
		s.warm = nil
	case s.warm == nil:
		s.warm = []float64{}
	}
	nt := int(dec.u32())
	if dec.err == nil && (nt > maxDeviceWarmup || nt*k != len(s.warm)) {
		dec.err = fmt.Errorf("%w: %d warm-up times for %d values", ErrBadState, nt, len(s.warm))
	}
	for range nt {
		if dec.err != nil {
			break
		}
		s.warmT = append(s.warmT, dec.i64())
	}
	s.trendA = dec.f64()
	if dec.err == nil && !(s.trendA >= 0 && s.trendA <= 1) {
		dec.err = fmt.Errorf("%w: baseline weight %v", ErrBadState, s.trendA)
	}
	want := []int{k, k, k, k * k, k, k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, k, k}
	ptrs := []*[]float64{&s.base, &s.slope, &s.sd, &s.beta, &s.crossSD, &s.lastX, &s.z, &s.fast, &s.cp, &s.cn, &s.gain, &s.mu, &s.muSlope, &s.nsc, &s.zs, &s.msz, &s.zc, &s.msc, &s.wlo, &s.whi}
	for i, p := range ptrs {
		*p = dec.f64s(want[i])
		if dec.err == nil && len(*p) != want[i] {
			dec.err = fmt.Errorf("%w: field %d has %d values, want %d", ErrBadState, i, len(*p), want[i])
		}
	}
	s.trend = make([]bool, k)
	for i := range s.trend {
		s.trend[i] = dec.boolean()
	}
	s.limit = dec.f64()
	s.climit = dec.f64()
	s.inAlarm = dec.boolean()
	s.quiet = int(dec.u32())
	s.back = int(dec.u32())
	s.alarmRows = int(dec.u32())
	s.rebase = dec.boolean()
	s.sinceEnd = int(dec.u32())
	s.lift = dec.f64()
	s.settled = dec.boolean()
	s.alarmArg = int(dec.u32()) - 1
	if dec.err == nil && (s.alarmArg < -1 || s.alarmArg >= 2*k) {
		dec.err = fmt.Errorf("%w: alarm stream %d", ErrBadState, s.alarmArg)
	}
	s.fam, s.famBin, s.famDamp = make([]familiar, k), make([]int, k), make([]float64, k)
	for i := range s.fam {
		s.fam[i].decode(&dec)
		if dec.err == nil && s.fam[i].hours != nil {
			dec.err = fmt.Errorf("%w: sensor %d has hour-of-day familiarity", ErrBadState, i)
		}
	}
	if dec.err == nil && !(s.lift >= 1) {
		dec.err = fmt.Errorf("%w: limit multiplier %v", ErrBadState, s.lift)
	}
	if err := dec.end(); err != nil {
		return err
	}
	*d = s
	return nil
}

// StateSize returns the number of bytes MarshalBinary would produce now.
func (d *DeviceDetector) StateSize() int {
	b, _ := d.MarshalBinary()
	return len(b)
}
