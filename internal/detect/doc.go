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
//     variance-ratio test, configured rules, flat-line and no-data detection
//     (both against the series' own longest normal run or silence, so an
//     irregular or bursty series does not alarm on its usual gaps). A
//     stuck run at the value of an earlier stuck run that recovered does
//     not alarm again: a sensor clipping at a floor or ceiling of its range
//     (CO2 at 350 ppm overnight) is its own normal, not a recurring fault.
//     The one-step predictor judges a reading after a silence against the
//     noise of a random walk over the silence, and an innovation beyond
//     three times its own 99.5% quantile alarms by itself (at once, not
//     after the likelihood's averaging window), unless it is a recurring
//     pattern: the last 64 such spikes away from the baseline are
//     remembered (where they landed, in which direction, at what time of
//     day; for 7 days of readings, at least 4 × LongScale), and a spike
//     landing near two earlier ones in the same direction (within 5% of the
//     running range, or, for a landing at the same time of day within an
//     hour, within 15% of the spike's own distance from the baseline),
//     and not beyond all of them by more than 1% of the range, still
//     scores but does not alarm by itself (a daily job lifting a series to
//     about the same value, a bursty series' usual bursts), while a spike
//     of a new size or to a new place (a new record) alarms at once. A spike back towards the baseline
//     (the end of a burst, in one step or partly, 90 → 40 → 0 on a busy
//     CPU) does not alarm by itself and is not remembered: it is no
//     evidence of its own, and a memory of returns would crowd the bursts
//     out of it. A sustained breakout (the
//     smoothed value beyond a range that widens only slowly, with some
//     evidence from the baseline (a reading scoring for level or shift and
//     the smoothed value two noise scales off the baseline, so a wandering
//     series reaching a new extreme with one noisy reading does not count)
//     or three noise scales beyond the range,
//     since a wide drift inflates the baseline's own noise scale) catches a drift that creeps out of
//     everything seen before without ever beating the running range in one
//     step. A new-territory test catches a drift that the slow baseline
//     follows and whose noise scale it inflates: the smoothed value
//     (seasonally adjusted once the seasonal residual is in use) five
//     long-run noise scales from a long-run mean (memory 20 × LongScale
//     readings and at least a day; a clipped standard deviation that
//     learns readings beyond its usual extremes only with outlierWeight, so
//     a drift hardly widens it). It is armed only after a day of history
//     and three swings of the smoothed value from one side of the long-run
//     mean to the other (so the long-run range is known, not a first
//     glimpse of a series wandering more slowly than the memory); any
//     alarm disarms it, and a new-territory alarm makes its level the new
//     long-run mean. A coarse, self-widening
//     histogram of the values learned as normal (per hour of the day once
//     the seasonal baseline is in use) damps the level and shift components
//     of a value in a range the series has occupied for a sustained time
//     before, so a recurring pattern (a working day's load after a weekend)
//     alarms once; only readings that did not look like a level change are
//     learned, so a shift or a drift stays unfamiliar.
//     A profile-mismatch test catches a seasonal break, a daily pattern
//     that changes shape or phase while every reading stays inside the
//     usual range: once the seasonal residual is in use, a mean of it in
//     seasonal noise units over two hours of wall time is compared with
//     its own largest usual absolute value, learned over the first week
//     of the residual's use (weekdays and a weekend) and afterwards
//     following a larger mean only over a day and forgetting an unseen
//     one over a week (the weekends a daily profile missed before the
//     weekly one took over). A mean three times that value (and at least
//     3.6 noise units; residuals clipped at 8) alarms by itself; any
//     alarm restarts the mean. It is never armed on a series whose
//     seasonal residual is not in use, or before a week of its use.
//     A contextual novelty component (after CAD-OSE, Smirnov 2016)
//     quantises the value into 6 coarse levels across the padded warm-up
//     range (plus one level below and one above it), with hysteresis (a
//     level changes only half a level width past its edge), and learns
//     which level followed each context of the last one and two distinct
//     levels. A level change whose contexts are new or did not predict it
//     scores (share of unpredicted contexts + share of new ones)/2; a score
//     of 0.75 or more alarms by itself, but only after a quiet rest (300
//     readings without such a score, and 500 readings of history) and with
//     some evidence from the other components (raw score at least 0.3), so
//     a series exploring its range does not alarm on each first visit.
//     A range breakout (a new record beyond the running range by a
//     margin of it) counts with a little evidence from the level or the
//     predictor (a score of 0.1) once LongScale readings have been
//     learned, and with clear evidence (0.5) before, while a young range
//     is still being explored.
//     The combined raw score goes through the anomaly likelihood of Ahmad et
//     al. (2017) with the red filter, and a rest period turns a run of
//     anomalous readings into one alarm. A series that returns, within the
//     rest period after an alarm, to a level it has occupied for a
//     sustained time before while the baseline is still far off re-learns
//     its baseline fast, as after the alarm, instead of crawling back
//     while every quantile learns the gap as normal. The rest period ends
//     early once the series has been quiet again (raw score under 0.1 and the
//     smoothed value inside its slow range) for a third of it, so a
//     second, distinct excursion soon after the first (a traffic jam an
//     hour after another) is a new alarm, while one long excursion stays
//     one.
//   - DeviceDetector scores one device across its sensors (multivariate):
//     per-sensor standardisation, Holt baselines for trending sensors, a
//     cross-sensor regression residual, MEWMA and CUSUM per stream with the
//     maximum over streams as statistic, warm-up quantile control limits
//     that keep learning (every row over them raises them slowly, so a
//     recurring pattern the warm-up did not see stops alarming and no alarm
//     lasts for ever), an alarm hold and a reverse change-point end.
//     Its warm-up covers a whole day of wall time (DeviceConfig.
//     WarmupSeconds) when that takes at most 5,000 rows, at the reporting
//     interval of its first Warmup rows: a device reporting every minute
//     learns night and working hours before it scores, so its first
//     morning's load ramp does not alarm; a device reporting every second
//     (a day out of reach) keeps Warmup rows.
//     Its slow baselines have a memory in wall time (DeviceConfig.
//     TrendSeconds, from the reporting interval learned at warm-up), so a
//     device sampled every second does not absorb a shift within seconds.
//     Live gains per stream scale what the MEWMA and the CUSUM see: the
//     slowly learned mean square of an EWMA of the stream at each
//     statistic's time scale (10 rows for the MEWMA, 50 for the CUSUM), in
//     white-noise units; the CUSUM's starts from the warm-up's own spread
//     at its time scale, and both start no lower than a conservative 1.3
//     when cold. A sensor whose slow wander outruns the baselines
//     (temperature on a 1 s device) then does not accumulate CUSUM alarms
//     on clean data.
//     A sensor beyond its warm-up range at a level it has occupied for a
//     sustained time before (the same self-widening value histogram as the
//     Ensemble's) counts only as much as it is unfamiliar; inside the
//     warm-up range familiarity halves it at most, so the MEWMA keeps its
//     sensitivity to small persistent shifts.
//     An alarm, once on, stays on while the stream that started it stays
//     over 0.7 of its limit (hysteresis), and the reverse change point
//     (every stream's fast EWMA back near its baseline) does not end it
//     meanwhile: a small persistent shift (a valve partly closed on a test
//     bench) keeps its statistic flickering around the limit, and a fixed
//     hold would split it into fragments. After six memories of the slow
//     baselines (TrendSeconds) the baselines frozen by the alarm are stale
//     and the fast streams alone end it again.
//     Before fitting, the warm-up is cleared of glitches: a reading more
//     than 20 robust noise scales off its column's median (the scale being
//     the larger of the normal equivalents of the median and the 90th
//     percentile absolute deviation, so the levels of a quantised sensor
//     are not glitches) is replaced by the previous reading. One
//     misreading in the warm-up (a current sensor reading the mains
//     voltage once) would otherwise inflate that sensor's noise scale and
//     the control limits for the device's whole life.
//
// ScoreCSV runs them over a CSV file exactly as the live engine runs over a
// stream, row by row. On a file with one value column it flags sparse alarms
// (one row per alarm, then a rest period), as event scoring wants; on a
// multi-column file it holds a device alarm over every row while the device
// statistic stays over its limit, as region-labelled data scored row by row
// wants (CSVOptions.HoldDeviceAlarms). anomaly_score is graded in both: the
// calibrated likelihood of the Ensembles and, for the device, half the
// ratio of its statistic to the control limit (0.5 at the limit). Rows
// that belong to a run that has already alarmed (a univariate rest period,
// a device alarm held without being flagged, a device settled after
// MaxAlarm) score half that, so a scorer that thresholds anomaly_score
// lower than 0.5 gets earlier and more alarms, not every row of each run.
//
// # State format
//
// MarshalBinary writes a detector's state (not its Config) as little-endian
// fixed-width fields: the byte 'V', a kind byte ('E' Ensemble, 'D'
// DeviceDetector) and a version byte (currently 10 for the Ensemble, 5 for the
// DeviceDetector), then
// the fields in the order of the encode functions in ensemble.go and
// device.go. Slices are a
// uint32 length followed by float64 values; strings a uint32 length and
// bytes; booleans one byte; the profile-mismatch mean and its largest
// usual value float32, as the detector keeps them. UnmarshalBinary rejects another kind or version,
// truncated input and trailing bytes with an error wrapping ErrBadState. A
// new field means a new version; old versions are not read (a detector
// re-warms from history instead).
//
// State size (measured by BenchmarkEnsemble and BenchmarkDevice): an
// Ensemble is 5,999 bytes with the seasonal profile (48 daily and 168 weekly
// buckets of 14 bytes, and 24×32 two-byte hour-of-day familiarity counts)
// and 1,439 bytes without, plus 8 bytes per warm-up reading while it warms
// up. The familiarity histogram (32 bins) is 276 bytes of either, the
// contextual novelty table (72 two-byte bitmasks) and its state 171, the
// spike memory (64 landings of 5 bytes: a half-precision offset in
// warm-up spans, a 16-bit clock that ticks every 2^shift readings and the
// time of day in 1/256 days) 354, the profile-mismatch test 12. A
// DeviceDetector is about 8k² + 532k bytes plus its sensor names after
// warm-up (2,411 bytes for 4 sensors, 4,919 for 8), plus 8k + 8 bytes per
// warm-up row before (a day of rows for a device reporting every minute or
// slower: 1,440 at one a minute, 58 kB for 4 sensors).
package detect
