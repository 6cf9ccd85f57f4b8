// Package detect is Vigil's detection engine: streaming anomaly detectors
// with per-series state, fed in timestamp order, each reading scored in
// [0, 1].
//
// Two detectors are exported:
//
//   - Ensemble scores one series (univariate). It learns range, noise, time
//     scale and reporting interval from a warm-up (no look-ahead), then
//     combines range breakout, a robust slow baseline with an optional
//     daily/weekly seasonal profile, a one-step predictor at the learned time
//     scale, a short-window mean against the baseline, a two-sided CUSUM, a
//     variance-ratio test, configured rules, flat-line and no-data detection.
//     The combined raw score goes through the anomaly likelihood of Ahmad et
//     al. (2017) with the red filter, and a rest period turns a run of
//     anomalous readings into one alarm.
//   - DeviceDetector scores one device across its sensors (multivariate):
//     per-sensor standardisation, Holt baselines for trending sensors, a
//     cross-sensor regression residual, MEWMA and CUSUM per stream with the
//     maximum over streams as statistic, warm-up quantile control limits, an
//     alarm hold and a reverse change-point end.
//
// ScoreCSV runs them over a CSV file exactly as the live engine runs over a
// stream, row by row.
//
// # State format
//
// MarshalBinary writes a detector's state (not its Config) as little-endian
// fixed-width fields: the byte 'V', a kind byte ('E' Ensemble, 'D'
// DeviceDetector) and a version byte (currently 1), then the fields in the
// order of the encode functions in ensemble.go and device.go. Slices are a
// uint32 length followed by float64 values; strings a uint32 length and
// bytes; booleans one byte. UnmarshalBinary rejects another kind or version,
// truncated input and trailing bytes with an error wrapping ErrBadState. A
// new field means a new version; old versions are not read (a detector
// re-warms from history instead).
//
// State size (measured by BenchmarkEnsemble and BenchmarkDevice): an
// Ensemble is 3,560 bytes with the seasonal profile (48 daily and 168 weekly
// buckets of 14 bytes) and 536 bytes without, plus 8 bytes per warm-up
// reading while it warms up. A DeviceDetector is about 8k² + 176k bytes plus
// its sensor names after warm-up (938 bytes for 4 sensors, 2,022 for 8),
// plus 8k bytes per warm-up row before.
package detect
