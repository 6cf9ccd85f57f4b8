package detect

import (
	"math"
	"slices"
)

const (
	ensembleKind    = 'E'
	ensembleVersion = 10

	dailyBuckets  = 48  // 30-minute buckets of the day
	weeklyBuckets = 168 // hourly buckets of the week
	bucketMemory  = 50  // bucket updates before a bucket mean becomes an EWMA
	bucketMature  = 3   // bucket updates before a bucket is used
	spikeZ0       = 3   // robust z below which a component scores 0
	spikeZ1       = 9   // robust z at which a component scores 1
	clipZ         = 3   // residuals are clipped to ±clipZ noise units when learning
	sigmaPerMAD   = 1.2533
	shortVarAlpha = 0.1
	shortAlpha    = 0.05 // weight of the short-window mean
	varRatioLow   = 2    // ratio of short to long noise that starts to score
	varRatioHigh  = 3.5  // ratio of short to long noise that scores 1
	minFlatLine   = 30
	farOutside    = 3.0 // noise scales beyond the slow range that evidence a drift by themselves
	sustainedZ    = 2.0 // noise scales between the smoothed value and the baseline that a sustained breakout needs
	intervalAlpha = 0.02
	breakoutEvid  = 0.1 // level or spike score a breakout needs, once the range is mature
	breakoutYoung = 0.5 // ...and while the range is young (LongScale readings)
	gapLearn      = 2   // a silence must exceed gapLearn × the longest normal one to alarm
	scaleMemory   = 4   // noise scales remember scaleMemory × LongScale readings
	outlierWeight = 0.25
	restScale     = 0.5  // factor of the score of a reading in the rest period
	famFull       = 0.25 // share of Warmup readings in a value bin that makes it fully familiar
	quietRaw      = 0.1  // raw score under which a reading is quiet
	quietFrac     = 3    // a rest period ends early after Rest/quietFrac quiet readings
	// New territory (drift) test: the smoothed value against the long-run
	// distribution of the series.
	terrMemory = 20         // the long-run mean and spread remember terrMemory × LongScale readings
	terrZ      = 5.0        // long-run noise scales between the smoothed value and the long-run mean that alarm
	terrSwing  = 0.5        // long-run noise scales either side of the mean that make a swing
	terrSwings = 3          // swings from one side of the long-run mean to the other before the test is armed
	terrSpan   = 86400000.0 // ms of history before the test is armed: the long run includes a day
	// Profile mismatch (seasonal break) test: a mean of the seasonal
	// residual over a few hours of wall time against its own largest
	// usual value.
	profWindow = 7200000.0     // ms: time constant of the mean of the seasonal residual
	profArm    = 7 * 86400000. // ms of seasonal use (a week: weekdays and a weekend) before the test is armed
	profLearn  = 86400000.0    // ms: memory with which the largest usual mean follows a larger one once armed
	profForget = 7             // days' worth of profLearn over which an unseen largest mean is forgotten
	profRatio  = 3.0           // multiple of the largest usual mean that alarms
	profFloor  = 1.2           // least largest usual mean, in seasonal noise units
	profClip   = 8.0           // seasonal residuals are clipped to ±profClip noise units in the mean
)

// fastAlphas are the candidate weights of the one-step predictor; the warm-up
// picks the one with the smallest prediction error, which is how a series'
// time scale is learned.
var fastAlphas = [...]float64{1, 0.5, 0.3, 0.15, 0.05}

type bucket struct {
	dev     float64 // mean deviation of readings in this bucket from the level
	n       float64 // readings learned, capped at bucketMemory
	periods float64 // distinct days (weeks) learned, capped at bucketMemory
	last    float64 // index of the last day (week) learned
}

// Ensemble is the univariate streaming detector of one series. It combines
// range breakout, a robust slow baseline (optionally seasonal), a one-step
// predictor at the learned time scale, a two-sided CUSUM, a variance-ratio
// test, configured rules, flat-line and no-data detection, and turns the
// combined raw score into a calibrated anomaly likelihood with a rest period.
//
// Feed readings in timestamp order with Update. An Ensemble is not safe for
// concurrent use. Its state is bounded (a few KiB; see StateSize) and
// serialises with MarshalBinary.
type Ensemble struct {
	cfg Config

	n      int64 // valid readings seen
	lastT  int64
	hasT   bool
	warm   []float64 // warm-up readings, nil after warm-up
	warmed bool

	alphaFast float64
	floor     float64 // noise floor
	lo, hi    float64 // running range

	level, levelDev float64 // slow robust baseline and noise (σ units)
	fast, innovDev  float64 // one-step predictor and its error (σ units)
	seasDev         float64 // noise of the seasonal residual
	shortVar        float64 // short EW mean of the clipped |innovation|
	cpos, cneg      float64 // CUSUM sums
	short, shortDev float64 // short-window mean and the spread of (short − level)
	relearn         int64   // readings left of fast re-learning after an alarm
	qLevel, qSpike  zquant  // high quantiles of the level and spike z
	qShift, qCusum  zquant  // high quantiles of the short-mean z and the CUSUM
	qVar            zquant  // high quantile of the variance ratio
	seasOn          bool    // the seasonal residual is in use
	learned         int64   // readings learned by the scoring path
	prev            float64

	run, longestRun int64
	flatOK          bool
	flatDone        bool
	// flatSeen: a reported stuck run at flatVal ended with the series
	// moving on, so a later run at that value is a recurring floor or
	// ceiling (a sensor clipping at its range), not a new fault.
	flatSeen bool
	flatVal  float64

	interval    float64 // learned reporting interval, ms
	longestGap  float64 // longest silence, ms, that did not alarm
	gapReported bool

	sinceAlarm int64
	quiet      int64 // consecutive readings with a raw score under quietRaw
	rearmed    bool  // the rest period ended early: the series was quiet again
	lik        likelihood

	daily  []bucket
	weekly []bucket

	fam familiar     // coarse histogram of the values learned as normal
	ctx contextModel // contextual novelty of the coarse level sequence
	spk spikeMemory  // where recent spikes landed

	sv, slo, shi float64 // smoothed value and the slowly widening range it is judged against

	// Long-run distribution of the series (EW mean and standard
	// deviation of the clipped, seasonally adjusted value) and the swings of the smoothed value across it (a swing is a move
	// from terrSwing scales on one side to terrSwing on the other; terrSide
	// is -1, 0 or 1): the new-territory test is armed once the series has
	// shown its long-run range a few times.
	tsv, ltMean, ltDev float64 // smoothed deseasonalised value, long-run mean and noise (σ units) of the deseasonalised value
	terrSide, terrSwgs float64

	// Profile mismatch: a mean of the seasonal residual (in seasonal
	// noise units) over profWindow of wall time and its largest usual
	// absolute value (both kept at float32 precision, as they are
	// stored), and the minute (Unix) the seasonal residual came into use.
	pm, pmMax float64
	pmSince   int64
}

// NewEnsemble returns an Ensemble with cfg. It panics if cfg does not
// validate: callers validate configuration once, where it is loaded.
func NewEnsemble(cfg Config) *Ensemble {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	e := &Ensemble{cfg: cfg, sinceAlarm: math.MaxInt32}
	if cfg.Seasonal {
		e.daily = make([]bucket, dailyBuckets)
		e.weekly = make([]bucket, weeklyBuckets)
	}
	return e
}

// Config returns the configuration of e.
func (e *Ensemble) Config() Config { return e.cfg }

// Warm reports whether the warm-up is over and e scores readings.
func (e *Ensemble) Warm() bool { return e.warmed }

// Interval returns the learned reporting interval in milliseconds (0 until
// two readings have been seen).
func (e *Ensemble) Interval() float64 { return e.interval }

// component scores of one reading.
type components struct {
	level, spike, shift, variance float64
	breakout, rule, flat, nodata  bool
	sustained                     bool    // the smoothed value broke out of the slow range
	territory                     bool    // the smoothed value is far out of the long-run distribution
	profile                       bool    // the seasonal residual has been off the profile for hours, far more than ever before
	gap                           float64 // silence before this reading in learned intervals (≥ 1)
	raw                           float64 // combined raw score
	ctx                           float64 // contextual novelty
	ctxAlarm                      bool    // a novel context after a quiet rest
	spikeRecur                    bool    // the spike landed where earlier spikes did
}

// Update scores the reading v at time t (Unix milliseconds). A NaN or
// infinite v is a missing reading: it returns a zero Result and changes
// nothing (callers poll Silent for no-data). Readings must come in timestamp
// order; an out-of-order reading is scored but does not teach the interval.
func (e *Ensemble) Update(t int64, v float64) Result {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Result{}
	}
	var c components
	if e.hasT {
		dt := float64(t - e.lastT)
		if dt > 0 {
			gap := e.cfg.GapFactor > 0 && e.interval > 0 && dt > e.gapLimit()
			if gap && e.warmed && !e.gapReported {
				c.nodata = true
			}
			if !gap && !e.gapReported {
				// A silence that did not alarm is normal for this series:
				// irregular series learn their own long gaps.
				e.longestGap = max(e.longestGap, dt)
			}
			if e.interval > 0 {
				c.gap = dt / e.interval
			}
			e.learnInterval(dt)
		}
		if t > e.lastT {
			e.lastT = t
		}
	} else {
		e.lastT, e.hasT = t, true
	}
	e.gapReported = false
	e.n++

	if !e.warmed {
		e.warmup(t, v)
		return Result{}
	}
	return e.score(t, v, c, true)
}

func (e *Ensemble) learnInterval(dt float64) {
	if e.interval == 0 {
		e.interval = dt
		return
	}
	a := intervalAlpha
	if !e.warmed {
		a = 0.1
	}
	e.interval += a * (min(max(dt, e.interval/4), e.interval*4) - e.interval)
}

// gapLimit is the silence, in ms, beyond which the series has no data: more
// than GapFactor learned intervals and more than gapLearn times the longest
// silence seen so far that did not alarm.
func (e *Ensemble) gapLimit() float64 {
	return max(e.cfg.GapFactor*e.interval, gapLearn*e.longestGap)
}

// Silent reports a no-data signal when, at time now, the series has been
// silent for more than GapFactor learned intervals and more than twice its
// longest silence so far that did not alarm. It reports each silence once;
// the next reading re-arms it.
func (e *Ensemble) Silent(now int64) (Result, bool) {
	if !e.warmed || !e.hasT || e.cfg.GapFactor <= 0 || e.interval <= 0 || e.gapReported {
		return Result{}, false
	}
	if float64(now-e.lastT) <= e.gapLimit() {
		return Result{}, false
	}
	e.gapReported = true
	return Result{
		Score: 1, Anomaly: true, Onset: true, Severity: SeverityWarning, NoData: true,
		Detectors: []string{DetNoData},
	}, true
}

func (e *Ensemble) warmup(t int64, v float64) {
	if e.warm == nil {
		e.warm = make([]float64, 0, e.cfg.Warmup)
		e.lo, e.hi = v, v
	}
	e.warm = append(e.warm, v)
	e.lo, e.hi = min(e.lo, v), max(e.hi, v)
	if len(e.warm) > 1 && v == e.prev {
		e.run++
	} else {
		e.longestRun = max(e.longestRun, e.run)
		e.run = 1
	}
	e.prev = v
	if len(e.warm) < e.cfg.Warmup {
		return
	}

	// Learn level, noise and time scale from the warm-up.
	w := e.warm
	sorted := slices.Clone(w)
	slices.Sort(sorted)
	med := sorted[len(sorted)/2]
	for i, x := range sorted {
		sorted[i] = math.Abs(x - med)
	}
	slices.Sort(sorted)
	mad := sorted[len(sorted)/2] * 1.4826
	span := e.hi - e.lo
	e.floor = max(0.01*span, 1e-9*max(1, math.Abs(med)))
	e.level = med
	e.levelDev = max(mad, e.floor)

	best := math.Inf(1)
	for _, a := range fastAlphas {
		f, errSum := w[0], 0.0
		for _, x := range w[1:] {
			errSum += math.Abs(x - f)
			f += a * (x - f)
		}
		if errSum < best*0.98 { // prefer the faster candidate unless clearly worse
			best, e.alphaFast = errSum, a
		}
	}
	e.innovDev = max(sigmaPerMAD*best/float64(len(w)-1), e.floor)
	e.seasDev = e.levelDev
	e.shortVar = e.innovDev / sigmaPerMAD
	e.short = 0
	e.qLevel, e.qSpike = zquant(zquantInit), zquant(zquantInit)
	e.qShift, e.qCusum, e.qVar = zquant(4), zquant(4), zquant(4)
	e.shortDev = e.levelDev * math.Sqrt(shortAlpha/(2-shortAlpha))
	e.fast = w[0]
	e.flatOK = span > 0
	e.fam.init(e.lo, e.hi, e.floor, e.cfg.Seasonal)
	e.ctx.init(e.lo, e.hi, e.floor)
	e.spk.init(med, max(e.hi-e.lo, e.floor), e.spikeMem())
	e.sv, e.slo, e.shi = med, e.lo, e.hi
	e.tsv, e.ltMean, e.ltDev, e.terrSide, e.terrSwgs = med, med, e.levelDev, 0, 0
	e.longestRun = max(e.longestRun, e.run)

	// Replay the warm-up through the scoring path to seed the CUSUM,
	// predictor and likelihood history; it cannot alarm.
	e.warmed = true
	e.prev = w[0]
	e.run = 0
	for _, x := range w {
		e.score(t, x, components{}, false)
	}
	e.warm = nil
	e.sinceAlarm = math.MaxInt32
	e.relearn = 0
}

func zscore(r, dev float64) float64 { return math.Abs(r) / dev }

func ramp(z, z0, z1 float64) float64 { return min(max((z-z0)/(z1-z0), 0), 1) }

// score runs every detector on v. live is false during the warm-up replay:
// states learn, but nothing alarms and the seasonal profile is not taught
// twice.
func (e *Ensemble) score(t int64, v float64, c components, live bool) Result {
	cfg := &e.cfg
	span := e.hi - e.lo

	// Range breakout against the running range.
	if live && cfg.BreakoutMargin >= 0 {
		pad := cfg.BreakoutMargin * max(span, e.floor)
		c.breakout = v > e.hi+pad || v < e.lo-pad
	}
	e.lo, e.hi = min(e.lo, v), max(e.hi, v)

	// Sustained breakout: the smoothed value beyond a range that widens
	// only slowly, so a drift that creeps out of everything seen before
	// (and so never beats the running range by a margin in one step)
	// alarms once it is well outside.
	e.sv += shortAlpha * (v - e.sv)
	if live && cfg.BreakoutMargin >= 0 {
		pad := cfg.BreakoutMargin * max(e.shi-e.slo, e.floor)
		c.sustained = e.sv > e.shi+pad || e.sv < e.slo-pad
	}
	ar := 1 / float64(cfg.LongScale)
	if v > e.shi {
		e.shi += ar * (v - e.shi)
	}
	if v < e.slo {
		e.slo += ar * (v - e.slo)
	}

	// Slow baseline, optionally seasonal.
	r := v - e.level
	zl := zscore(r, e.levelDev)
	var db, wb *bucket
	resid := r
	if e.daily != nil && t >= 0 {
		sec := t / 1000
		db = &e.daily[(sec/1800)%dailyBuckets]
		wb = &e.weekly[(sec/3600)%weeklyBuckets]
	}
	seasResid := r
	seasOff := 0.0 // the seasonal profile's offset at t, once it has one
	if db != nil {
		var b *bucket
		switch {
		case wb.periods >= 2:
			b = wb
		case db.periods >= 2:
			b = db
		}
		if b != nil {
			seasResid = r - b.dev
			// Hysteresis: use the seasonal residual once it is clearly
			// tighter than the plain one.
			switch {
			case !e.seasOn && e.seasDev < 0.7*e.levelDev:
				e.seasOn, e.short, e.cpos, e.cneg = true, 0, 0, 0
				e.pm, e.pmMax, e.pmSince = 0, 0, t/60000
				e.shortDev = 1.5 * e.seasDev * math.Sqrt(shortAlpha/(2-shortAlpha))
			case e.seasOn && e.seasDev > 0.9*e.levelDev:
				e.seasOn, e.short, e.cpos, e.cneg = false, 0, 0, 0
			}
			if e.seasOn {
				resid, seasOff = seasResid, b.dev
				// Unusual for the seasonal profile and not plainly usual:
				// a profile that is briefly wrong does not alarm.
				zl = min(zscore(resid, e.seasDev), 2*zl)
				if live {
					c.profile = e.profileMismatch(t, seasResid)
				}
			}
		}
	}
	c.level = e.qLevel.scaled(zl)

	// New territory: the smoothed value many long-run noise scales from
	// the long-run mean. A drift that the slow baseline follows (and whose
	// noise scale it inflates) still ends far out of everything the series
	// did over a much longer memory. The test is armed only once the
	// smoothed value has swung across the long-run distribution a few
	// times, so that distribution is known, not a first glimpse of a series
	// wandering more slowly than the memory (that would be new territory
	// every day).
	if ltSD := e.ltDev; ltSD > 0 {
		e.tsv += shortAlpha * (v - seasOff - e.tsv)
		z := (e.tsv - e.ltMean) / ltSD
		switch {
		case z > terrSwing && e.terrSide <= 0:
			e.terrSwgs += min(-e.terrSide, 1)
			e.terrSide = 1
		case z < -terrSwing && e.terrSide >= 0:
			e.terrSwgs += min(e.terrSide, 1)
			e.terrSide = -1
		}
		e.terrSwgs = min(e.terrSwgs, terrSwings)
		c.territory = live && e.terrSwgs >= terrSwings && math.Abs(z) >= terrZ &&
			float64(e.learned)*e.interval >= terrSpan
		dl := min(max(v-seasOff-e.ltMean, -clipZ*ltSD), clipZ*ltSD)
		mem := float64(terrMemory * cfg.LongScale)
		if e.interval > 0 {
			mem = max(mem, terrSpan/e.interval)
		}
		al := 1 / min(max(float64(e.learned+1), 20), mem)
		e.ltMean += al * dl
		// A standard deviation (not a median deviation: a series with two
		// regimes, day and night, spends little time near its mean) that,
		// like the other noise scales, learns from readings beyond its
		// usual extremes only with outlierWeight, so a drift hardly widens
		// it before it is caught.
		wl := al
		if math.Abs(dl) > terrSwing*terrZ*ltSD {
			wl *= outlierWeight
		}
		e.ltDev = max(math.Sqrt((1-wl)*(ltSD*ltSD+wl*dl*dl)), e.floor)
	}

	// One-step predictor at the learned time scale.
	// After a silence the series has had time to move: the innovation is
	// judged against the noise of a random walk over the silence.
	inn := v - e.fast
	c.spike = e.qSpike.scaled(zscore(inn, e.innovDev*math.Sqrt(min(max(c.gap, 1), 100))))
	now := uint32(e.learned)
	e.spk.sweep(now, e.spikeMem())
	if c.spike >= 1 {
		// A spike that lands where earlier spikes landed is a recurring
		// pattern: it still scores, but does not alarm by itself. Only a
		// spike away from the baseline counts and is remembered: a return
		// towards it (the end of a burst, partly or wholly) is no evidence
		// by itself, and a memory of returns would crowd out the bursts.
		if base := e.level + seasOff; math.Abs(v-base) < math.Abs(e.fast-base) {
			c.spikeRecur = true
		} else {
			span := max(e.hi-e.lo, e.floor)
			tod := timeOfDay(t)
			c.spikeRecur = e.spk.recurring(v, inn > 0, now, tod, e.spikeMem(), spikeNear*span, spikeRel*math.Abs(v-base), spikeRecord*span)
			e.spk.learn(v, inn > 0, now, tod)
		}
	}

	// Short-window mean against the slow baseline, in units of its own
	// historical spread: self-calibrating for autocorrelated series.
	e.short += shortAlpha * (resid - e.short)
	sd := e.short
	// The quantile trackers make every component self-calibrating: a
	// pattern that recurs (a daily step, a regular burst) raises its own
	// quantile and stops alarming after its first occurrences.
	c.shift = e.qShift.scaled(zscore(sd, e.shortDev))

	// Two-sided CUSUM on the residual standardised by the effective noise
	// (the noise inflated for autocorrelation, from the short-mean spread).
	dev := max(e.levelDev, e.shortDev/math.Sqrt(shortAlpha/(2-shortAlpha)))
	if e.seasOn {
		dev = max(e.seasDev, e.shortDev/math.Sqrt(shortAlpha/(2-shortAlpha)))
	}
	s := min(max(resid/dev, -5), 5)
	e.cpos = max(0, e.cpos+s-cfg.CUSUMK)
	e.cneg = max(0, e.cneg-s-cfg.CUSUMK)
	c.shift = max(c.shift, e.qCusum.scaled(4*max(e.cpos, e.cneg)/cfg.CUSUMH))

	// Variance ratio of the innovation (clipped, so one outlier is not a
	// variance change).
	e.shortVar += shortVarAlpha * (min(math.Abs(inn), 4*e.innovDev) - e.shortVar)
	c.variance = e.qVar.scaled(2 * sigmaPerMAD * e.shortVar / e.innovDev)

	// Rules.
	if live {
		if cfg.Rules.Min != nil && v < *cfg.Rules.Min || cfg.Rules.Max != nil && v > *cfg.Rules.Max {
			c.rule = true
		}
		if cfg.Rules.MaxRate > 0 && e.interval > 0 {
			// The rate uses the learned interval for the step, so that an
			// irregular burst of readings does not look like a fast change.
			if math.Abs(v-e.prev)/(e.interval/1000) > cfg.Rules.MaxRate {
				c.rule = true
			}
		}
	}

	// Flat line (stuck sensor).
	if v == e.prev {
		e.run++
	} else {
		if e.run > 0 && !e.flatDone { // a reported stuck run is not normal
			e.longestRun = max(e.longestRun, e.run)
		}
		if e.flatDone { // ...but the value it was stuck at has recovered once
			e.flatSeen, e.flatVal = true, e.prev
		}
		e.run = 1
		e.flatDone = false
	}
	if live && cfg.FlatLine >= 0 && e.flatOK && !e.flatDone {
		limit := int64(cfg.FlatLine)
		if limit == 0 {
			limit = max(minFlatLine, 2*e.longestRun)
		}
		if e.run >= limit {
			// A run at the value of an earlier stuck run that recovered
			// alarms only once: the second time it is the series' own
			// clipping level.
			c.flat, e.flatDone = !e.flatSeen || v != e.flatVal, true
		}
	}
	e.prev = v

	// Learn: robust slow baseline, seasonal profile, predictor noise. After
	// an alarm the baseline re-learns fast, so a new normal is learned once.
	e.learned++
	a := 1 / float64(min(max(e.learned, 20), int64(cfg.LongScale)))
	rc := min(max(r, -clipZ*e.levelDev), clipZ*e.levelDev)
	if e.relearn > 0 {
		// Follow the new normal: the residual of the full (seasonal) model.
		e.relearn--
		e.level += shortAlpha * 2 * resid
		e.short -= shortAlpha * 2 * resid
	} else {
		e.level += a * rc
	}
	// Noise scales learn from readings beyond their usual extremes only
	// with outlierWeight, so an anomaly hardly widens the band that should
	// catch it while a model that has become wrong still catches up; they
	// learn nothing from a stuck run, which says nothing about the noise.
	// Scales have a longer memory than the baseline, so that a slow drift
	// is not learned as noise before it is detected.
	as := 1 / float64(min(max(e.learned, 20), int64(scaleMemory*cfg.LongScale)))
	if e.flatOK && e.run >= minFlatLine/2 {
		as, a = 0, 0 // a stuck run teaches nothing
	}
	w := func(x, band float64) float64 {
		if math.Abs(x) <= band {
			return as
		}
		return as * outlierWeight
	}
	e.levelDev = max(e.levelDev+w(r, float64(e.qLevel)*e.levelDev)*(sigmaPerMAD*math.Abs(rc)-e.levelDev), e.floor)
	sdc := min(max(sd, -clipZ*e.shortDev), clipZ*e.shortDev)
	e.shortDev = max(e.shortDev+w(sd, (spikeZ0+1)*e.shortDev)*(sigmaPerMAD*math.Abs(sdc)-e.shortDev), e.floor*0.1)
	if db != nil {
		rs := min(max(seasResid, -clipZ*e.seasDev), clipZ*e.seasDev)
		e.seasDev = max(e.seasDev+w(seasResid, float64(e.qLevel)*e.seasDev)*(sigmaPerMAD*math.Abs(rs)-e.seasDev), e.floor)
		if live {
			d := min(max(r, -4*e.levelDev), 4*e.levelDev)
			day := float64(t / 86400000)
			for i, b := range [...]*bucket{db, wb} {
				p := day
				if i == 1 {
					p = math.Floor(day / 7)
				}
				if b.n == 0 || p != b.last {
					b.last = p
					b.periods = min(b.periods+1, bucketMemory)
				}
				if b.n < bucketMemory {
					b.n++
				}
				b.dev += (d - b.dev) / b.n
			}
		}
	}
	ic := min(max(inn, -clipZ*e.innovDev), clipZ*e.innovDev)
	e.innovDev = max(e.innovDev+w(inn, float64(e.qSpike)*e.innovDev)*(sigmaPerMAD*math.Abs(ic)-e.innovDev), e.floor)
	e.fast += e.alphaFast * inn
	if max(e.cpos, e.cneg) >= 2*cfg.CUSUMH {
		e.cpos, e.cneg = 0, 0
	}

	// A value in a range the series has occupied for a sustained time
	// before is not a level anomaly, however far it is from the current
	// baseline: a recurring pattern (a working day's load after a weekend)
	// alarms once. Only readings that did not look like a level change are
	// learned, so a drift or a shift stays unfamiliar.
	// A seasonal series counts only what it saw at this hour of the day
	// (a value familiar at another hour is a pattern out of phase); an
	// hour of the day holds fewer readings, so half an hour's worth makes
	// it familiar.
	fb, fc, fh := e.fam.lookup(t, v)
	if max(c.level, c.shift) == 0 {
		e.fam.learn(t, fb)
	}
	full := famFull * float64(cfg.Warmup)
	if e.seasOn {
		fc = fh
		if e.interval > 0 {
			full = min(full, max(1800000/e.interval, 3))
		}
	}
	f := min(fc/full, 1)
	if live && f >= 1 && c.level > 0 && e.sinceAlarm <= int64(cfg.Rest) && !e.rearmed {
		// Back, after an alarm, at a level the series has occupied for
		// a sustained time, far from the baseline that followed the
		// excursion: the baseline follows the return as it followed
		// the alarm, instead of crawling back over LongScale readings
		// while every quantile learns the gap as normal (masking the
		// next anomaly for thousands of readings).
		e.relearn = max(e.relearn, int64(2/shortAlpha))
	}
	if f > 0 {
		c.level *= 1 - f
		c.shift *= 1 - f
	}
	raw := max(c.level, c.spike, c.shift, c.variance)
	// Contextual novelty: a new coarse-level transition after a quiet rest,
	// with some evidence from the other components.
	c.ctx = e.ctx.update(v)
	c.ctxAlarm = e.ctx.alarm(c.ctx) && live && raw >= ctxEvid
	c.raw = raw
	score := e.lik.update(raw, cfg.LikelihoodAvg, cfg.LikelihoodMemory)
	if !live {
		return Result{}
	}
	return e.decide(score, c)
}

// profileMismatch updates the mean of the seasonal residual over the last
// hours and reports a seasonal break: a daily pattern that changed shape or
// phase while every reading stays inside the usual range, so the residual
// of the seasonal profile stays off for hours, far more than it ever did
// in a week of the profile's own use.
func (e *Ensemble) profileMismatch(t int64, seasResid float64) bool {
	al, ml := 1.0, 1.0
	if e.interval > 0 {
		al, ml = min(e.interval/profWindow, 1), min(e.interval/profLearn, 1)
	}
	e.pm = f32(e.pm + al*(min(max(seasResid/e.seasDev, -profClip), profClip)-e.pm))
	z := math.Abs(e.pm)
	if float64(t/60000-e.pmSince)*60000 < profArm {
		// Not armed: learn the largest usual mean of a week of the
		// profile (weekdays and a weekend).
		e.pmMax = max(e.pmMax, z)
		return false
	}
	alarm := z >= profRatio*max(e.pmMax, profFloor)
	if z > e.pmMax {
		// A larger mean is learned slowly, over a day, so a break
		// that builds up over hours does not teach itself as usual.
		e.pmMax += ml * (z - e.pmMax)
	} else {
		// ...and a largest mean not seen again is forgotten over a
		// week (the weekends a daily profile missed, before the weekly
		// one took over).
		e.pmMax += ml / profForget * (z - e.pmMax)
	}
	e.pmMax = f32(e.pmMax)
	return alarm
}

// f32 rounds x to float32 precision, the precision it is stored with.
func f32(x float64) float64 { return float64(float32(x)) }

// decide applies the threshold, the direct-evidence detectors and the rest
// period.
func (e *Ensemble) decide(score float64, c components) Result {
	cfg := &e.cfg
	// A breakout counts only when the reading is also unusual for the
	// level or the predictor: a new record within the noise is not one.
	// Once the range has been learned over the baseline's memory, a new
	// record by a margin of the whole range is strong evidence in itself
	// and the reading need only be a little beyond the usual extreme of
	// the level or the predictor (a score of breakoutEvid); before, while
	// a young range is still being explored, it must be clearly beyond.
	gate := float64(breakoutEvid)
	if e.learned < int64(cfg.LongScale) {
		gate = breakoutYoung
	}
	c.breakout = c.breakout && max(c.level, c.spike) >= gate
	// A sustained breakout counts only with some evidence from the
	// baseline, and from the smoothed value, not one reading: a series
	// still exploring its natural range (a wandering level reaching a new
	// extreme with one noisy reading) is not one.
	outside := c.sustained
	evidence := max(c.level, c.shift) > 0 && math.Abs(e.sv-e.level) >= sustainedZ*e.levelDev
	// ...or the smoothed value being far outside: many noise scales beyond
	// the slow range (a drift wide enough to inflate the baseline's own
	// noise scale and so hide from it).
	far := farOutside * max(e.levelDev, e.floor)
	c.sustained = outside && (evidence || e.sv < e.slo-far || e.sv > e.shi+far)
	forced := c.breakout || c.rule || c.flat || c.nodata || (c.spike >= 1 && !c.spikeRecur) || c.sustained || c.territory || c.ctxAlarm || c.profile
	e.sinceAlarm++
	// A run of anomalous readings is one alarm, but a new run after the
	// series has been quiet again for a while is a new event: the rest
	// period ends early once the raw score has stayed low, and the
	// smoothed value inside its slow range, for quietRest readings.
	if c.raw < quietRaw && !outside {
		e.quiet++
	} else {
		e.quiet = 0
	}
	resting := e.sinceAlarm <= int64(cfg.Rest)
	if q := e.quietRest(); resting && e.quiet >= q && e.sinceAlarm > q {
		e.rearmed = true
	}
	candidate := score >= cfg.Threshold || forced
	// Flat-line, no-data and rule signals fire once per episode by
	// themselves, so they are not held back by the rest period.
	once := c.flat || c.nodata || c.rule
	if !candidate || (resting && !e.rearmed && !once) {
		if outside && e.sinceAlarm <= int64(cfg.Rest) {
			// Resting after an alarm: the excursion is the new range.
			e.slo, e.shi = min(e.slo, e.sv), max(e.shi, e.sv)
		}
		// Below threshold or resting: report the score under the threshold.
		// Resting, it is halved: the run it belongs to has alarmed, and a
		// scorer that thresholds the score below the threshold should see
		// the next run's rising edge, not this run's tail.
		score = min(score, math.Nextafter(cfg.Threshold, 0))
		if resting && !e.rearmed {
			score *= restScale
		}
		return Result{Score: score}
	}
	e.sinceAlarm, e.rearmed = 0, false
	// The level that alarmed is the new normal's range: it alarms once.
	e.slo, e.shi = min(e.slo, e.sv), max(e.shi, e.sv)
	// The series must show its long-run range again before the
	// new-territory test is armed, and a level that alarmed for being new
	// territory is the new long-run mean.
	e.terrSide, e.terrSwgs = 0, 0
	if c.territory {
		e.ltMean = e.tsv
	}
	if !c.flat && !c.nodata {
		e.relearn = int64(2 / shortAlpha)
	}
	e.cpos, e.cneg = 0, 0
	// The mean of the seasonal residual starts afresh: a seasonal break
	// alarms once, and the baseline re-learns after any alarm.
	e.pm = 0
	if forced {
		score = max(score, cfg.Threshold+(1-cfg.Threshold)/2)
	}
	res := Result{Score: score, Anomaly: true, Onset: true, Severity: SeverityInfo}
	switch {
	case score >= 0.8 || c.rule:
		res.Severity = SeverityCritical
	case score >= 0.6 || forced:
		res.Severity = SeverityWarning
	}
	type named struct {
		name string
		s    float64
	}
	parts := []named{
		{DetRule, b2f(c.rule) * 3}, {DetBreakout, b2f(c.breakout || c.sustained) * 2.5},
		{DetNoData, b2f(c.nodata) * 2.2}, {DetFlat, b2f(c.flat) * 2},
		{DetShift, max(c.shift, b2f(c.territory)*2.4)}, {DetLevel, max(c.level, b2f(c.profile)*2.3)}, {DetSpike, c.spike}, {DetVariance, c.variance},
	}
	slices.SortStableFunc(parts, func(a, b named) int {
		switch {
		case a.s > b.s:
			return -1
		case a.s < b.s:
			return 1
		}
		return 0
	})
	for _, p := range parts {
		if p.s >= 0.5 || (len(res.Detectors) == 0 && p.s > 0) {
			res.Detectors = append(res.Detectors, p.name)
		}
	}
	return res
}

// spikeMem is the memory of the spike landings in readings: spikeDays at
// the learned interval, and at least scaleMemory × LongScale readings.
func (e *Ensemble) spikeMem() float64 {
	mem := scaleMemory * float64(e.cfg.LongScale)
	if e.interval > 0 {
		mem = max(mem, spikeDays*86400000/e.interval)
	}
	return mem
}

// quietRest is the number of quiet readings that ends a rest period early.
func (e *Ensemble) quietRest() int64 {
	return int64(e.cfg.Rest / quietFrac)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MarshalBinary encodes the state of e (not its Config). The format is
// described in doc.go.
func (e *Ensemble) MarshalBinary() ([]byte, error) {
	enc := encoder{b: make([]byte, 0, 512+len(e.warm)*8+len(e.daily)*16+len(e.weekly)*16)}
	enc.header(ensembleKind, ensembleVersion)
	enc.i64(e.n)
	enc.i64(e.lastT)
	enc.boolean(e.hasT)
	enc.boolean(e.warmed)
	enc.boolean(e.warm != nil)
	enc.f64s(e.warm)
	for _, f := range []float64{e.alphaFast, e.floor, e.lo, e.hi, e.level, e.levelDev,
		e.fast, e.innovDev, e.seasDev, e.shortVar, e.cpos, e.cneg, e.prev, e.interval, e.longestGap, e.short, e.shortDev, float64(e.qLevel), float64(e.qSpike), float64(e.qShift), float64(e.qCusum), float64(e.qVar), e.sv, e.slo, e.shi, e.flatVal, e.tsv, e.ltMean, e.ltDev, e.terrSide, e.terrSwgs} {
		enc.f64(f)
	}
	enc.i64(e.run)
	enc.i64(e.longestRun)
	enc.boolean(e.flatOK)
	enc.boolean(e.flatDone)
	enc.boolean(e.flatSeen)
	enc.boolean(e.gapReported)
	enc.i64(e.sinceAlarm)
	enc.i64(e.quiet)
	enc.boolean(e.rearmed)
	enc.i64(e.relearn)
	enc.i64(e.learned)
	enc.boolean(e.seasOn)
	enc.f32(e.pm)
	enc.f32(e.pmMax)
	enc.u32(uint32(int32(e.pmSince)))
	e.lik.encode(&enc)
	e.fam.encode(&enc)
	e.ctx.encode(&enc)
	e.spk.encode(&enc)
	enc.boolean(e.daily != nil)
	for _, bs := range [][]bucket{e.daily, e.weekly} {
		for _, b := range bs {
			enc.f64(b.dev)
			enc.u8(uint8(b.n))
			enc.u8(uint8(b.periods))
			enc.u32(uint32(int32(b.last)))
		}
	}
	return enc.b, nil
}

// UnmarshalBinary restores state written by MarshalBinary into e, keeping
// e's Config. It returns an error wrapping ErrBadState on corrupt input or
// when the saved seasonal setting differs from e's Config.
func (e *Ensemble) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	d.header(ensembleKind, ensembleVersion)
	var s Ensemble
	s.cfg = e.cfg
	s.n = d.i64()
	s.lastT = d.i64()
	s.hasT = d.boolean()
	s.warmed = d.boolean()
	hasWarm := d.boolean()
	s.warm = d.f64s(100000)
	switch {
	case !hasWarm:
		s.warm = nil
	case s.warm == nil:
		s.warm = []float64{}
	}
	for _, p := range []*float64{&s.alphaFast, &s.floor, &s.lo, &s.hi, &s.level, &s.levelDev,
		&s.fast, &s.innovDev, &s.seasDev, &s.shortVar, &s.cpos, &s.cneg, &s.prev, &s.interval, &s.longestGap, &s.short, &s.shortDev, (*float64)(&s.qLevel), (*float64)(&s.qSpike), (*float64)(&s.qShift), (*float64)(&s.qCusum), (*float64)(&s.qVar), &s.sv, &s.slo, &s.shi, &s.flatVal, &s.tsv, &s.ltMean, &s.ltDev, &s.terrSide, &s.terrSwgs} {
		*p = d.f64()
	}
	s.run = d.i64()
	s.longestRun = d.i64()
	s.flatOK = d.boolean()
	s.flatDone = d.boolean()
	s.flatSeen = d.boolean()
	s.gapReported = d.boolean()
	s.sinceAlarm = d.i64()
	s.quiet = d.i64()
	s.rearmed = d.boolean()
	s.relearn = d.i64()
	s.learned = d.i64()
	s.seasOn = d.boolean()
	s.pm = d.f32()
	s.pmMax = d.f32()
	s.pmSince = int64(int32(d.u32()))
	s.lik.decode(&d)
	s.fam.decode(&d)
	s.ctx.decode(&d)
	s.spk.decode(&d)
	seasonal := d.boolean()
	if d.err == nil && seasonal != e.cfg.Seasonal {
		d.err = ErrBadState
	}
	if seasonal {
		s.daily = make([]bucket, dailyBuckets)
		s.weekly = make([]bucket, weeklyBuckets)
		for _, bs := range [][]bucket{s.daily, s.weekly} {
			for i := range bs {
				bs[i].dev = d.f64()
				bs[i].n = float64(d.u8())
				bs[i].periods = float64(d.u8())
				bs[i].last = float64(int32(d.u32()))
			}
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	*e = s
	return nil
}

// StateSize returns the number of bytes MarshalBinary would produce now.
func (e *Ensemble) StateSize() int {
	b, _ := e.MarshalBinary()
	return len(b)
}

// zquant tracks a high quantile (zquantP) of a robust z-score with a frugal
// streaming estimator, so that a component scores a reading only when it is
// well beyond the series' own usual extremes: heavy-tailed series learn a
// larger quantile and raise fewer false alarms.
type zquant float64

const (
	zquantP    = 0.995
	zquantInit = 3.0
	zquantStep = 0.05
	zquantMin  = 2.5
	zquantLo   = 1.2 // multiple of the quantile at which a component starts to score
	zquantHi   = 3.0 // multiple of the quantile at which it scores 1
)

// scaled updates the quantile with z and returns z's score in [0, 1].
func (q *zquant) scaled(z float64) float64 {
	cur := float64(*q)
	s := ramp(z/cur, zquantLo, zquantHi)
	if z > cur {
		cur += zquantStep * zquantP
	} else {
		cur -= zquantStep * (1 - zquantP)
	}
	*q = zquant(max(cur, zquantMin))
	return s
}
