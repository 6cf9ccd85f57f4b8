package detect

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidConfig is wrapped by Validate errors.
var ErrInvalidConfig = errors.New("detect: invalid config")

// Config tunes the univariate Ensemble. The zero value of a field means "use
// the default" only through DefaultConfig: start from DefaultConfig and
// override fields (per device, series or tag overrides are applied by
// callers). Every count is in readings, not wall time, because the time scale
// of a series is learned from its own warm-up.
type Config struct {
	// Warmup is the number of readings a series learns from (range, noise,
	// time scale, reporting interval) before it scores. Default 150.
	Warmup int `json:"warmup"`
	// Rest is the number of readings after an alarm during which no new alarm
	// is raised, so a run of anomalous readings becomes one alarm. It ends
	// early once the series has been quiet again for Rest/3 readings, so a
	// second, distinct excursion is a new alarm. Default 150.
	Rest int `json:"rest"`
	// LongScale is the memory, in readings, of the slow baseline and its
	// noise scale. Default 400.
	LongScale int `json:"long_scale"`
	// Threshold is the calibrated score (log anomaly likelihood) at or above
	// which a reading is an anomaly. 0.5 means a tail probability of 1e-5,
	// 0.55 about 3e-6. Default 0.55.
	Threshold float64 `json:"threshold"`
	// LikelihoodAvg is the number of raw scores averaged before the
	// likelihood (W′ in Ahmad et al.). Default 5.
	LikelihoodAvg int `json:"likelihood_avg"`
	// LikelihoodMemory is the effective length, in readings, of the history
	// the likelihood compares against (W). Default 8640.
	LikelihoodMemory int `json:"likelihood_memory"`
	// BreakoutMargin is the fraction of the running [min, max] range a
	// reading must exceed it by to be a range breakout. Negative disables.
	// Default 0.2.
	BreakoutMargin float64 `json:"breakout_margin"`
	// Seasonal enables the daily/weekly baseline. Default true.
	Seasonal bool `json:"seasonal"`
	// CUSUMK is the CUSUM allowance in noise units. Default 0.5.
	CUSUMK float64 `json:"cusum_k"`
	// CUSUMH is the CUSUM decision interval in noise units. Default 18.
	CUSUMH float64 `json:"cusum_h"`
	// GapFactor: a silence longer than GapFactor times the learned reporting
	// interval, and longer than twice the longest silence seen so far that
	// did not alarm, is a no-data anomaly. 0 disables. Default 20.
	GapFactor float64 `json:"gap_factor"`
	// FlatLine is the number of identical consecutive readings after which a
	// sensor is reported stuck. 0 learns it: twice the longest identical run
	// seen so far, at least 30. Negative disables. Default 0.
	FlatLine int `json:"flat_line"`
	// Rules are fixed thresholds from configuration.
	Rules Rules `json:"rules"`
}

// Rules are configured limits checked on every reading. A violated rule is an
// anomaly by itself (subject to the rest period).
type Rules struct {
	// Min and Max, when set, are hard limits on the value.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// MaxRate, when positive, is the largest allowed absolute rate of change
	// in value units per second.
	MaxRate float64 `json:"max_rate,omitempty"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Warmup:           150,
		Rest:             150,
		LongScale:        400,
		Threshold:        0.55,
		LikelihoodAvg:    5,
		LikelihoodMemory: 8640,
		BreakoutMargin:   0.2,
		Seasonal:         true,
		CUSUMK:           0.5,
		CUSUMH:           18,
		GapFactor:        20,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: %s = %v, want %s", ErrInvalidConfig, field, v, want))
	}
	if c.Warmup < 10 || c.Warmup > 100000 {
		bad("warmup", c.Warmup, "10..100000")
	}
	if c.Rest < 0 {
		bad("rest", c.Rest, ">= 0")
	}
	if c.LongScale < 2 {
		bad("long_scale", c.LongScale, ">= 2")
	}
	if !(c.Threshold > 0 && c.Threshold <= 1) {
		bad("threshold", c.Threshold, "in (0, 1]")
	}
	if c.LikelihoodAvg < 1 || c.LikelihoodAvg > maxAvg {
		bad("likelihood_avg", c.LikelihoodAvg, fmt.Sprintf("1..%d", maxAvg))
	}
	if c.LikelihoodMemory < 10 {
		bad("likelihood_memory", c.LikelihoodMemory, ">= 10")
	}
	if math.IsNaN(c.BreakoutMargin) {
		bad("breakout_margin", c.BreakoutMargin, "a number")
	}
	if !(c.CUSUMK >= 0) {
		bad("cusum_k", c.CUSUMK, ">= 0")
	}
	if !(c.CUSUMH > 0) {
		bad("cusum_h", c.CUSUMH, "> 0")
	}
	if !(c.GapFactor >= 0) {
		bad("gap_factor", c.GapFactor, ">= 0")
	}
	if c.Rules.Min != nil && c.Rules.Max != nil && *c.Rules.Min > *c.Rules.Max {
		bad("rules.min", *c.Rules.Min, "<= rules.max")
	}
	if !(c.Rules.MaxRate >= 0) {
		bad("rules.max_rate", c.Rules.MaxRate, ">= 0")
	}
	return errors.Join(errs...)
}

// DeviceConfig tunes the multivariate DeviceDetector.
type DeviceConfig struct {
	// Warmup is the number of rows learned from (per-sensor mean, noise,
	// trend, cross-sensor model and control limits). Default 250.
	Warmup int `json:"warmup"`
	// WarmupSeconds extends the warm-up to this much wall time, at the
	// reporting interval of the first Warmup rows, when that takes no more
	// than 5000 rows: a device reporting every minute or slower learns a
	// whole day (night and working hours) before it scores; a faster one,
	// for which a day is out of reach, keeps Warmup rows. 0 disables it.
	// Default 86400 (one day).
	WarmupSeconds float64 `json:"warmup_seconds"`
	// Lambda is the MEWMA smoothing weight. Default 0.1.
	Lambda float64 `json:"lambda"`
	// Quantile of the warm-up statistic that sets the control limit.
	// Default 0.995.
	Quantile float64 `json:"quantile"`
	// Margin multiplies the warm-up quantile to give the control limit.
	// Default 1.5.
	Margin float64 `json:"margin"`
	// MinLimit is the smallest MEWMA control limit in noise units. Default 4.5.
	MinLimit float64 `json:"min_limit"`
	// CUSUMK is the CUSUM allowance in noise units. Default 0.5.
	CUSUMK float64 `json:"cusum_k"`
	// Hold is the number of rows an alarm is held after the statistic falls
	// back under the limit, so that a region-long anomaly whose statistic
	// flickers around the limit stays one alarm. Default 15 (about 1.5/Lambda,
	// the memory of the MEWMA).
	Hold int `json:"hold"`
	// NoiseFloor is the relative noise floor: a sensor's noise scale is at
	// least NoiseFloor times its warm-up mean magnitude (and times its range).
	// Default 0.001.
	NoiseFloor float64 `json:"noise_floor"`
	// TrendLambda is the largest per-row EWMA weight of the slow baselines
	// (of sensors that trend during warm-up, and of every stream). Default
	// 0.05.
	TrendLambda float64 `json:"trend_lambda"`
	// TrendSeconds is the memory of the slow baselines in wall time: the
	// per-row weight is the reporting interval learned from the warm-up
	// divided by TrendSeconds, at most TrendLambda. A fast-sampled device
	// (every second) then keeps its baseline for minutes and sees a shift
	// that lasts them, instead of absorbing it in a few dozen rows. 0 uses
	// TrendLambda per row whatever the interval. Default 100 (a per-row
	// weight of 0.01 at one row a second; devices reporting every 2 s or
	// slower use TrendLambda).
	TrendSeconds float64 `json:"trend_seconds"`
	// Rest is the number of rows after an alarm ends during which a new
	// alarm is not a new onset (it continues the previous event). Default 150.
	Rest int `json:"rest"`
	// MaxAlarm is the longest alarm, in rows: an alarm still on after
	// MaxAlarm rows is taken as the new normal; the baselines are reset to
	// the current readings and the alarm ends. Default 600.
	MaxAlarm int `json:"max_alarm"`
	// CrossModel enables the cross-sensor regression residuals that catch a
	// correlation break. Default true.
	CrossModel bool `json:"cross_model"`
}

// DefaultDeviceConfig returns the defaults documented on DeviceConfig.
func DefaultDeviceConfig() DeviceConfig {
	return DeviceConfig{
		Warmup:        250,
		WarmupSeconds: 86400,
		Lambda:        0.1,
		Quantile:      0.995,
		Margin:        1.5,
		MinLimit:      6,
		CUSUMK:        0.5,
		Hold:          15,
		NoiseFloor:    0.001,
		TrendLambda:   0.05,
		TrendSeconds:  100,
		CrossModel:    true,
		MaxAlarm:      600,
		Rest:          150,
	}
}

// Validate reports every problem with c at once.
func (c DeviceConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: %s = %v, want %s", ErrInvalidConfig, field, v, want))
	}
	if c.Warmup < 10 || c.Warmup > maxDeviceWarmup {
		bad("warmup", c.Warmup, fmt.Sprintf("10..%d", maxDeviceWarmup))
	}
	if !(c.Lambda > 0 && c.Lambda <= 1) {
		bad("lambda", c.Lambda, "in (0, 1]")
	}
	if !(c.Quantile > 0 && c.Quantile <= 1) {
		bad("quantile", c.Quantile, "in (0, 1]")
	}
	if !(c.Margin > 0) {
		bad("margin", c.Margin, "> 0")
	}
	if !(c.MinLimit >= 0) {
		bad("min_limit", c.MinLimit, ">= 0")
	}
	if !(c.CUSUMK >= 0) {
		bad("cusum_k", c.CUSUMK, ">= 0")
	}
	if c.Hold < 0 {
		bad("hold", c.Hold, ">= 0")
	}
	if c.Rest < 0 {
		bad("rest", c.Rest, ">= 0")
	}
	if c.MaxAlarm < 1 {
		bad("max_alarm", c.MaxAlarm, ">= 1")
	}
	if !(c.WarmupSeconds >= 0) {
		bad("warmup_seconds", c.WarmupSeconds, ">= 0")
	}
	if !(c.NoiseFloor >= 0) {
		bad("noise_floor", c.NoiseFloor, ">= 0")
	}
	if !(c.TrendLambda > 0 && c.TrendLambda <= 1) {
		bad("trend_lambda", c.TrendLambda, "in (0, 1]")
	}
	if !(c.TrendSeconds >= 0) || math.IsInf(c.TrendSeconds, 0) {
		bad("trend_seconds", c.TrendSeconds, ">= 0 and finite")
	}
	return errors.Join(errs...)
}
