// Package detecteval holds the opt-in quality measurement of package detect
// against a labelled corpus written by 'vigil corpus'. It has no API: run
//
//	VIGIL_TEST_CORPUS=/path/to/corpus go test -run TestCorpusReport -v ./internal/detect/detecteval
//
// It lives apart from package detect so that detect's own tests do not
// depend on the corpus and evaluation packages.
package detecteval
