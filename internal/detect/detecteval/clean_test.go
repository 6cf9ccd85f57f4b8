package detecteval

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// TestCleanCorpusNoFalseAlarms scores the fault-free files of generated
// corpora and wants no alarm after the evaluation's probation (15% of a
// file, at most 750 rows). Seed 3 holds a slowly wandering 1 s current and
// a 1 m temperature whose daily peak reaches a new high: a single noisy
// reading beyond the baseline once made their smoothed values a sustained
// breakout.
func TestCleanCorpusNoFalseAlarms(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		dir := t.TempDir()
		if _, err := simulate.WriteCorpus(t.Context(), dir, simulate.CorpusOptions{Seed: seed}, nil); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		files, err := filepath.Glob(filepath.Join(dir, "clean_*.csv"))
		if err != nil || len(files) == 0 {
			t.Fatalf("seed %d: no clean files (%v)", seed, err)
		}
		for _, path := range files {
			rows := scoreFile(t, path)
			probation := min(len(rows)*15/100, 750)
			for i, row := range rows[probation:] {
				if row[len(row)-1] == "1" {
					t.Errorf("seed %d %s: alarm at data row %d (%s)", seed, filepath.Base(path), probation+i+1, row[0])
				}
			}
		}
	}
}

// scoreFile runs ScoreCSV over path and returns its output data rows.
func scoreFile(t *testing.T, path string) [][]string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	if _, err := detect.ScoreCSV(t.Context(), in, &out, detect.DefaultCSVOptions()); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows[1:]
}
