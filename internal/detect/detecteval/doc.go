// Package detecteval holds the opt-in quality measurement of package detect
// against a labelled corpus written by 'vigil corpus'. It has no API: run
//
//	VIGIL_TEST_CORPUS=/path/to/corpus go test -run TestCorpusReport -v ./internal/detect/detecteval
//
// VIGIL_TEST_SPARSE_DEVICE=1 flags only the onset of a multivariate alarm
// (CSVOptions.HoldDeviceAlarms false), which suits the corpus's event and
// NAB-style scoring of device files; VIGIL_TEST_DEVICE_ONLY=1 runs only the
// device detector on multi-column files; VIGIL_TEST_VERBOSE=1 adds one line
// per file; VIGIL_TEST_THRESHOLD=0.4 re-thresholds anomaly_score instead of
// using is_anomaly, as a scorer that picks its own threshold would.
//
// It lives apart from package detect so that detect's own tests do not
// depend on the corpus and evaluation packages.
package detecteval
