package benchdata

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// ImportSKAB converts the Skoltech Anomaly Benchmark into a corpus in out
// (created if needed): every CSV file under data becomes
// out/<folder>_<name>.csv with its sensor columns (spaces in names replaced
// by '_'), and each maximal run of rows with anomaly = 1 becomes a
// correlation_break window over all sensors, from the run's first row to
// the first normal row after it (or 1 ms past the last row). It returns
// the labels written and the summary.
func ImportSKAB(ctx context.Context, data, out string, opts Options) (simulate.Labels, Summary, error) {
	return importAll(ctx, "import skab", data, out, opts,
		func(im *importer, full, rel string) (*table, int64, []simulate.Window, error) {
			t, err := readSKABFile(full, rel)
			if err != nil {
				return nil, 0, nil, err
			}
			if !t.labelled {
				im.warn("%s: no anomaly column: a clean file, no windows", rel)
			}
			return t, t.medianStepMs(1000), skabWindows(t), nil
		}, nil)
}

// skabWindows returns the maximal runs of anomalous rows of t as windows.
func skabWindows(t *table) []simulate.Window {
	out := []simulate.Window{}
	for i := 0; i < len(t.times); {
		if !t.anomalous[i] {
			i++
			continue
		}
		j := i
		for j < len(t.times) && t.anomalous[j] {
			j++
		}
		end := t.times[len(t.times)-1].Add(time.Millisecond)
		if j < len(t.times) {
			end = t.times[j]
		}
		out = append(out, simulate.Window{Kind: simulate.CorrelationBreak, Columns: t.columns, Start: t.times[i], End: end})
		i = j
	}
	return out
}

func readSKABFile(p, name string) (*table, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	return parseSKAB(name, f)
}

// parseSKAB parses one SKAB data file: a ';'-separated header datetime,
// sensors, then optionally anomaly (or is_anomaly) and changepoint (or
// is_pa), which is ignored.
func parseSKAB(name string, r io.Reader) (*table, error) {
	cr := csvReader(r, ';')
	header, err := cr.Read()
	if err == io.EOF {
		return nil, lineErr(name, 1, "empty file, want a header datetime;<sensors>;anomaly;changepoint")
	}
	if err != nil {
		return nil, readErr(name, err)
	}
	header = slices.Clone(header) // the reader reuses its record
	ti, ai := -1, -1
	var sensors []int
	t := &table{}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch strings.ToLower(h) {
		case "datetime", "timestamp":
			if ti >= 0 {
				return nil, lineErr(name, 1, "two time columns in header %q", header)
			}
			ti = i
		case "anomaly", "is_anomaly":
			ai = i
		case "changepoint", "is_pa":
		default:
			col := strings.ReplaceAll(h, " ", "_")
			if col == "" || seen[col] || strings.ContainsAny(col, `,"`) {
				return nil, lineErr(name, 1, "column %d: name %q is empty, repeated or holds a comma or quote", i+1, h)
			}
			seen[col] = true
			sensors = append(sensors, i)
			t.columns = append(t.columns, col)
		}
	}
	if ti < 0 || len(sensors) == 0 {
		return nil, lineErr(name, 1, "header %q has no datetime column or no sensor column", header)
	}
	t.labelled = ai >= 0
	cells := make([]string, len(sensors))
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, readErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		ts, err := parseTime(rec[ti])
		if err != nil {
			return nil, lineErr(name, line, "%v", err)
		}
		for k, i := range sensors {
			if cells[k], err = checkNumber(rec[i]); err != nil {
				return nil, lineErr(name, line, "column %s: %v", t.columns[k], err)
			}
		}
		anomalous := false
		if ai >= 0 {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[ai]), 64)
			if err != nil || (v != 0 && v != 1) {
				return nil, lineErr(name, line, "%s %q is not 0 or 1", header[ai], rec[ai])
			}
			anomalous = v == 1
		}
		t.add(ts, cells, anomalous)
	}
}
