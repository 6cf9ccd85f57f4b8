package detecteval

import (
	"context"
	"io"
	"os"
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
