// Package benchdata converts public anomaly benchmarks into Vigil's
// labelled corpus format (see internal/simulate/FORMAT.md), so that
// `vigil eval --corpus DIR` scores `vigil detect` on data other detectors
// have been judged on.
//
// ImportNAB reads the Numenta Anomaly Benchmark: every CSV file under its
// data directory (`timestamp,value`, extra columns such as `label` ignored)
// and the windows of combined_windows.json. NAB windows include their end
// timestamp, so each window's end is moved 1 ms later to keep that row in
// the half-open corpus window. NAB labels say where an anomaly is, not what
// it is, so every window gets the kind simulate.LevelShift.
//
// ImportSKAB reads the Skoltech Anomaly Benchmark: every ';'-separated CSV
// file under its data directory (`datetime;<sensors>;anomaly;changepoint`,
// or `is_anomaly;is_pa`). Each maximal run of rows with anomaly = 1 becomes
// a simulate.CorrelationBreak window over all sensors; a file without an
// anomaly column (SKAB's anomaly-free recording) is a clean file.
//
// Both write timestamps as RFC 3339 UTC with milliseconds (the input's
// timestamps, without a zone, are taken as UTC) and copy values verbatim
// after checking that they are numbers. A row whose timestamp is earlier
// than the previous written row's is dropped and counted, as the corpus
// requires rows in time order. Malformed input fails with an error wrapping
// ErrMalformed that names the file and line.
package benchdata
