package detect

// Severity grades an anomaly: 0 none, 1 info, 2 warning, 3 critical.
type Severity uint8

// Severity levels.
const (
	SeverityNone Severity = iota
	SeverityInfo
	SeverityWarning
	SeverityCritical
)

// String returns the lowercase name of s.
func (s Severity) String() string {
	switch s {
	case SeverityNone:
		return "none"
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityCritical:
		return "critical"
	}
	return "unknown"
}

// Detector names reported in Result.Detectors.
const (
	DetLevel    = "level"    // deviation from the slow robust (or seasonal) baseline
	DetSpike    = "spike"    // one-step innovation against the learned time scale
	DetShift    = "shift"    // two-sided CUSUM: level shift or drift
	DetVariance = "variance" // variance-ratio test
	DetBreakout = "breakout" // beyond the running [min, max] range
	DetRule     = "rule"     // configured threshold or rate of change
	DetFlat     = "flatline" // stuck sensor
	DetNoData   = "nodata"   // silence far beyond the learned interval
	DetMEWMA    = "mewma"    // multivariate EWMA, max over sensors
	DetCUSUM    = "cusum"    // multivariate per-sensor CUSUM
	DetCross    = "cross"    // cross-sensor correlation break
)

// Result is the outcome of scoring one reading (or one device row).
type Result struct {
	// Score is the calibrated anomaly score in [0, 1]. Anomaly is true
	// exactly when Score >= the configured threshold (0.5 by default).
	Score float64
	// Anomaly marks the first reading of an alarm (univariate: one per run,
	// then a rest period) or every row of a held alarm (multivariate).
	Anomaly bool
	// Onset marks the first reading (row) of an alarm. For an Ensemble it
	// equals Anomaly; a DeviceDetector holds Anomaly for the rows of an
	// alarm and sets Onset on the first only.
	Onset bool
	// Severity grades the anomaly; SeverityNone when Anomaly is false.
	Severity Severity
	// NoData is true for a no-data signal: it has no reading of its own.
	NoData bool
	// Detectors lists the detectors that contributed, strongest first.
	Detectors []string
	// Sensors lists the contributing sensors (multivariate only).
	Sensors []string
}
