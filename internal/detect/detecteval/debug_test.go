package detecteval

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/eval"
)

// TestDebugFile prints every alarm onset of one corpus file with its source.
func TestDebugFile(t *testing.T) {
	dir, name := os.Getenv("VIGIL_TEST_CORPUS"), os.Getenv("VIGIL_DEBUG_FILE")
	if dir == "" || name == "" {
		t.Skip("unset")
	}
	labels, err := eval.LoadLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range labels.Files {
		if fl.File == name {
			for _, w := range fl.Windows {
				t.Logf("window %s %v %s .. %s", w.Kind, w.Columns, w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))
			}
		}
	}
	hdr := recs[0][1:]
	k := len(hdr)
	opts := detect.DefaultCSVOptions()
	ens := make([]*detect.Ensemble, k)
	for i := range ens {
		ens[i] = detect.NewEnsemble(opts.Config)
	}
	var dev *detect.DeviceDetector
	if k > 1 {
		dev = detect.NewDeviceDetector(opts.Device, hdr)
	}
	vals := make([]float64, k)
	for r, rec := range recs[1:] {
		ts, _ := time.Parse(time.RFC3339Nano, rec[0])
		for i := range k {
			vals[i], _ = strconv.ParseFloat(rec[i+1], 64)
			if rec[i+1] == "" {
				continue
			}
			res := ens[i].Update(ts.UnixMilli(), vals[i])
			if res.Onset {
				t.Logf("row %6d %s %-12s ens %.3f %v", r, ts.Format("Mon 15:04"), hdr[i], res.Score, res.Detectors)
			}
		}
		if dev != nil {
			res := dev.Update(ts.UnixMilli(), vals)
			if res.Onset {
				t.Logf("row %6d %s %-12s dev %.3f %v", r, ts.Format("Mon 15:04"), res.Sensors, res.Score, res.Detectors)
			}
		}
	}
}
