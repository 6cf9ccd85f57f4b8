// Package simulate generates realistic, deterministic IoT telemetry for a
// fleet of devices, with labelled injected faults.
//
// Every device carries a few shared hidden drivers — a daily ambient cycle,
// a slow weather-like variation and a load that follows business hours and
// weekdays — and each of its sensors is a linear response to those drivers
// plus its own slow drift, white noise and finite resolution. Sensors of one
// device are therefore correlated (temperature rises with load, humidity
// falls when temperature rises, power follows load). Readings arrive on a
// jittered schedule with occasional lost readings and short outages.
//
// Faults (spikes, level shifts, gradual drifts, stuck values, noise bursts,
// dropouts, seasonal breaks, correlation breaks) are injected on top of the
// normal signal and returned as labelled windows. The same seed always gives
// the same readings and the same labels; a fault changes readings only inside
// its window (and, for level shifts and drifts, which persist, after it).
//
// The package also writes the labelled CSV corpus that `vigil eval` scores
// (see corpus.go and the format description in FORMAT.md) and sends readings
// to a running server as InfluxDB line protocol (Sender).
package simulate

import "math"

// Sensor describes one kind of simulated sensor: its level, how it responds
// to its device's shared drivers, and how noisy and coarse its readings are.
type Sensor struct {
	// Name is the field name of the sensor's readings, e.g. "temperature".
	Name string `json:"name"`
	// Base is the mean level.
	Base float64 `json:"base"`
	// Daily is the amplitude of the response to the daily ambient cycle
	// (negative for sensors that fall when the ambient rises).
	Daily float64 `json:"daily"`
	// Weather is the response to the device's slow, random ambient
	// variation, a unit-variance process with a correlation time of hours.
	Weather float64 `json:"weather"`
	// Load is the response to the device's load, between 0 (idle) and 1
	// (full); the load follows business hours on weekdays.
	Load float64 `json:"load"`
	// Noise is the standard deviation of white measurement noise.
	Noise float64 `json:"noise"`
	// DriftPerDay is the standard deviation of the sensor's slow linear drift
	// rate, in units of the sensor per day.
	DriftPerDay float64 `json:"drift_per_day"`
	// Decimals is the resolution: readings are rounded to this many decimals.
	Decimals int `json:"decimals"`
	// Min and Max bound the physical range; readings are clamped into it.
	// Max <= Min means unbounded.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Scale returns the typical size of the sensor's unexplained variation: the
// unit in which fault magnitudes are expressed. It is never below the
// sensor's resolution.
func (s Sensor) Scale() float64 {
	v := math.Sqrt(s.Noise*s.Noise + s.Weather*s.Weather + 0.01*s.Load*s.Load)
	return max(v, math.Pow(10, -float64(s.Decimals)))
}

// quantise clamps v into the sensor's range and rounds it to its resolution.
func (s Sensor) quantise(v float64) float64 {
	if s.Max > s.Min {
		v = min(max(v, s.Min), s.Max)
	}
	p := pow10(s.Decimals)
	return math.Round(v*p) / p
}

// Catalogue returns the built-in sensor kinds, in an order that puts the
// strongly coupled ones (temperature, humidity, power) first.
func Catalogue() []Sensor {
	return []Sensor{
		{Name: "temperature", Base: 21, Daily: 1.8, Weather: 1.2, Load: 2.0, Noise: 0.08, DriftPerDay: 0.01, Decimals: 2, Min: -40, Max: 85},
		{Name: "humidity", Base: 45, Daily: -5, Weather: -3.5, Load: -2.5, Noise: 0.4, DriftPerDay: 0.05, Decimals: 1, Min: 0, Max: 100},
		{Name: "power", Base: 150, Daily: 12, Weather: 18, Load: 900, Noise: 9, DriftPerDay: 0.3, Decimals: 1, Min: 0},
		{Name: "pressure", Base: 1013, Daily: 0.6, Weather: 5, Noise: 0.06, DriftPerDay: 0.005, Decimals: 2, Min: 900, Max: 1100},
		{Name: "co2", Base: 420, Daily: 10, Weather: 8, Load: 550, Noise: 7, DriftPerDay: 0.5, Decimals: 0, Min: 350, Max: 5000},
		{Name: "vibration", Base: 0.25, Weather: 0.03, Load: 2.6, Noise: 0.12, DriftPerDay: 0.002, Decimals: 3, Min: 0},
		{Name: "voltage", Base: 231, Daily: -1.2, Weather: 0.8, Load: -3.5, Noise: 0.35, DriftPerDay: 0.01, Decimals: 1, Min: 200, Max: 260},
		{Name: "current", Base: 0.6, Daily: 0.05, Weather: 0.08, Load: 3.9, Noise: 0.05, DriftPerDay: 0.001, Decimals: 2, Min: 0},
	}
}

// CatalogueSensor returns the built-in sensor kind called name.
func CatalogueSensor(name string) (Sensor, bool) {
	for _, s := range Catalogue() {
		if s.Name == name {
			return s, true
		}
	}
	return Sensor{}, false
}

// pow10 returns 10^n, exactly for small n and without math.Pow.
func pow10(n int) float64 {
	switch n {
	case 0:
		return 1
	case 1:
		return 10
	case 2:
		return 100
	case 3:
		return 1e3
	case 4:
		return 1e4
	}
	return math.Pow(10, float64(n))
}
