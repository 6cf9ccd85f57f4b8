package detecteval

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/eval"
)

// TestCorpusReport scores a labelled corpus written by 'vigil corpus' with
// ScoreCSV and prints the eval report. It runs only when VIGIL_TEST_CORPUS
// names the corpus directory; it measures, it does not assert.
func TestCorpusReport(t *testing.T) {
	dir := os.Getenv("VIGIL_TEST_CORPUS")
	if dir == "" {
		t.Skip("VIGIL_TEST_CORPUS unset")
	}
	labels, err := eval.LoadLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := detect.DefaultCSVOptions()
	if os.Getenv("VIGIL_TEST_DEVICE_ONLY") != "" {
		opts.DeviceOnly = true
	}
	if os.Getenv("VIGIL_TEST_SPARSE_DEVICE") != "" {
		// Flag only the onset of a device alarm, as event scoring wants.
		opts.HoldDeviceAlarms = false
	}
	scorer := func(ctx context.Context, in io.Reader, out io.Writer) error {
		_, err := detect.ScoreCSV(ctx, in, out, opts)
		return err
	}
	if ts := os.Getenv("VIGIL_TEST_THRESHOLD"); ts != "" {
		// Re-threshold anomaly_score, as a scorer that ignores is_anomaly
		// would.
		thr, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			t.Fatalf("VIGIL_TEST_THRESHOLD: %v", err)
		}
		scorer = func(ctx context.Context, in io.Reader, out io.Writer) error {
			var buf bytes.Buffer
			if _, err := detect.ScoreCSV(ctx, in, &buf, opts); err != nil {
				return err
			}
			return rethreshold(&buf, out, thr)
		}
	}
	rep, err := eval.Run(t.Context(), dir, labels, scorer, eval.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := eval.WriteTable(&b, rep, os.Getenv("VIGIL_TEST_VERBOSE") != ""); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

// rethreshold copies a ScoreCSV output, setting is_anomaly (the last
// column) to anomaly_score (the one before) >= thr.
func rethreshold(in io.Reader, out io.Writer, thr float64) error {
	r := csv.NewReader(in)
	w := csv.NewWriter(out)
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("rethreshold line %d: %w", line, err)
		}
		if line > 1 {
			n := len(rec)
			s, err := strconv.ParseFloat(rec[n-2], 64)
			if err != nil {
				return fmt.Errorf("rethreshold line %d: %w", line, err)
			}
			rec[n-1] = "0"
			if s >= thr {
				rec[n-1] = "1"
			}
		}
		if err := w.Write(rec); err != nil {
			return fmt.Errorf("rethreshold line %d: %w", line, err)
		}
	}
	w.Flush()
	return w.Error()
}
