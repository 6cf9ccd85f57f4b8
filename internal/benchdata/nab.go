package benchdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// ImportNAB converts the Numenta Anomaly Benchmark into a corpus in out
// (created if needed): every CSV file under data becomes
// out/<category>_<name>.csv with the windows that labelsPath (NAB's
// combined_windows.json, keyed "<category>/<name>.csv") gives it. A data
// file without a label key gets no windows and a warning in the summary.
// It returns the labels written and the summary.
func ImportNAB(ctx context.Context, data, labelsPath, out string, opts Options) (simulate.Labels, Summary, error) {
	windows, err := readNABLabels(labelsPath)
	if err != nil {
		return simulate.Labels{}, Summary{}, fmt.Errorf("import nab: %w", err)
	}
	return importAll(ctx, "import nab", data, out, opts,
		func(im *importer, full, rel string) (*table, int64, []simulate.Window, error) {
			t, err := readNABFile(full, rel)
			if err != nil {
				return nil, 0, nil, err
			}
			ws, ok := windows[rel]
			if !ok {
				im.warn("%s: no key %q in %s: the file gets no windows", rel, rel, labelsPath)
			}
			delete(windows, rel)
			return t, t.medianStepMs(0), ws, nil
		},
		func(im *importer) {
			left := make([]string, 0, len(windows))
			for k := range windows {
				left = append(left, k)
			}
			sort.Strings(left)
			for _, k := range left {
				im.warn("%s: label key %q matches no CSV file under %s", labelsPath, k, data)
			}
		})
}

// readNABLabels reads combined_windows.json: file key → windows, sorted by
// start, each end moved 1 ms later as NAB windows include their end.
func readNABLabels(p string) (map[string][]simulate.Window, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	defer f.Close()
	return decodeNABLabels(p, f)
}

func decodeNABLabels(name string, r io.Reader) (map[string][]simulate.Window, error) {
	var raw map[string][][]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrMalformed, err)
	}
	out := make(map[string][]simulate.Window, len(raw))
	var errs []error
	for key, ws := range raw {
		list := make([]simulate.Window, 0, len(ws))
		for j, w := range ws {
			if len(w) != 2 {
				errs = append(errs, fmt.Errorf("%s key %q window %d: %w: %d bounds, want 2", name, key, j, ErrMalformed, len(w)))
				continue
			}
			start, err1 := parseTime(w[0])
			end, err2 := parseTime(w[1])
			if err := errors.Join(err1, err2); err != nil {
				errs = append(errs, fmt.Errorf("%s key %q window %d: %w: %w", name, key, j, ErrMalformed, err))
				continue
			}
			if end.Before(start) {
				errs = append(errs, fmt.Errorf("%s key %q window %d: %w: end %s before start %s", name, key, j, ErrMalformed, w[1], w[0]))
				continue
			}
			list = append(list, simulate.Window{Kind: simulate.LevelShift, Columns: []string{"value"}, Start: start, End: end.Add(time.Millisecond)})
		}
		slices.SortFunc(list, func(a, b simulate.Window) int { return a.Start.Compare(b.Start) })
		out[key] = list
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func readNABFile(p, name string) (*table, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	return parseNAB(name, f)
}

// parseNAB parses one NAB data file: a header naming timestamp and value
// columns (others are ignored), then one row per reading.
func parseNAB(name string, r io.Reader) (*table, error) {
	cr := csvReader(r, ',')
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, lineErr(name, 1, "empty file, want a header timestamp,value")
	}
	if err != nil {
		return nil, readErr(name, err)
	}
	header = slices.Clone(header) // the reader reuses its record
	ti, vi := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "timestamp":
			ti = i
		case "value":
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return nil, lineErr(name, 1, "header %q has no timestamp and value columns", header)
	}
	t := &table{columns: []string{"value"}}
	cells := make([]string, 1)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, readErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(ti, vi) {
			return nil, lineErr(name, line, "%d fields, want at least %d", len(rec), max(ti, vi)+1)
		}
		ts, err := parseTime(rec[ti])
		if err != nil {
			return nil, lineErr(name, line, "%v", err)
		}
		if cells[0], err = checkNumber(rec[vi]); err != nil {
			return nil, lineErr(name, line, "%v", err)
		}
		t.add(ts, cells, false)
	}
}
