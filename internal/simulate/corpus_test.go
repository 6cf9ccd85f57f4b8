package simulate

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func smallOptions(seed uint64) CorpusOptions {
	return CorpusOptions{Seed: seed, MinRows: 800, MaxRows: 1200, Intervals: []time.Duration{time.Second, 5 * time.Minute}, Clean: 1, DeviceFiles: 3}
}

func TestCorpusDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	la, err := WriteCorpus(t.Context(), a, smallOptions(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := WriteCorpus(t.Context(), b, smallOptions(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(la, lb); diff != "" {
		t.Errorf("same seed, different labels:\n%s", diff)
	}
	for _, f := range append(la.Files, FileLabels{File: LabelsFile}) {
		x, _ := os.ReadFile(filepath.Join(a, f.File))
		y, _ := os.ReadFile(filepath.Join(b, f.File))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: %d and %d bytes differ with the same seed", f.File, len(x), len(y))
		}
	}
	if _, err := WriteCorpus(t.Context(), c, smallOptions(2), nil); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(filepath.Join(a, la.Files[0].File))
	y, _ := os.ReadFile(filepath.Join(c, la.Files[0].File))
	if bytes.Equal(x, y) {
		t.Errorf("%s identical for seeds 1 and 2", la.Files[0].File)
	}
}

// TestCorpusContent checks the corpus against its labels: the CSV format of
// `vigil detect`, row counts, the mix of files, and windows that match the
// data (a stuck window is flat, a dropout window is empty).
func TestCorpusContent(t *testing.T) {
	dir := t.TempDir()
	l, err := WriteCorpus(t.Context(), dir, smallOptions(5), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, LabelsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read, err := ReadLabels(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, read); diff != "" {
		t.Errorf("labels file does not round-trip:\n%s", diff)
	}
	kinds := map[Kind]int{}
	var clean, multi int
	for _, fl := range l.Files {
		t.Run(fl.File, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, fl.File))
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(append([]string{"timestamp"}, fl.Columns...), recs[0]); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			rows := recs[1:]
			if len(rows) != fl.Rows {
				t.Fatalf("%d rows, labels say %d", len(rows), fl.Rows)
			}
			times := make([]time.Time, len(rows))
			for i, r := range rows {
				ts, err := time.Parse(time.RFC3339, r[0])
				if err != nil {
					t.Fatalf("row %d: %v", i+2, err)
				}
				times[i] = ts
				for j, cell := range r[1:] {
					if _, err := strconv.ParseFloat(cell, 64); err != nil {
						t.Fatalf("row %d column %s: %q not a number", i+2, fl.Columns[j], cell)
					}
				}
			}
			for _, w := range fl.Windows {
				kinds[w.Kind]++
				if w.Start.Before(times[0]) || w.End.After(times[len(times)-1].Add(time.Duration(fl.IntervalMs)*time.Millisecond)) {
					t.Errorf("window %+v outside the file's time range", w)
				}
				var in [][]string
				for i, r := range rows {
					if !times[i].Before(w.Start) && times[i].Before(w.End) {
						in = append(in, r)
					}
				}
				switch w.Kind {
				case Dropout:
					if len(in) != 0 {
						t.Errorf("dropout %v–%v holds %d rows", w.Start, w.End, len(in))
					}
				case Stuck:
					c := 1 + indexOf(fl.Columns, w.Columns[0])
					for _, r := range in {
						if r[c] != in[0][c] {
							t.Fatalf("stuck %s moved: %s then %s", w.Columns[0], in[0][c], r[c])
						}
					}
					fallthrough
				default:
					if len(in) == 0 {
						t.Errorf("%s window %v–%v holds no rows", w.Kind, w.Start, w.End)
					}
				}
			}
			if len(fl.Windows) == 0 {
				clean++
			}
			if len(fl.Columns) > 1 {
				multi++
				if len(fl.Columns) < 3 || len(fl.Columns) > 8 {
					t.Errorf("device file with %d sensors, want 3 to 8", len(fl.Columns))
				}
			}
		})
	}
	for _, k := range Kinds() {
		if kinds[k] == 0 {
			t.Errorf("no %s window in the corpus", k)
		}
	}
	if clean != 2 || multi != 3 {
		t.Errorf("%d clean and %d device files, want 2 and 3", clean, multi)
	}
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

func TestReadLabelsInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not json", "{"},
		{"unknown field", `{"version":1,"files":[],"extra":1}`},
		{"wrong version", `{"version":2,"files":[]}`},
		{"path in name", `{"version":1,"files":[{"file":"../x.csv","rows":1,"columns":["v"]}]}`},
		{"duplicate file", `{"version":1,"files":[{"file":"a.csv","columns":["v"]},{"file":"a.csv","columns":["v"]}]}`},
		{"no columns", `{"version":1,"files":[{"file":"a.csv","rows":1}]}`},
		{"bad kind", `{"version":1,"files":[{"file":"a.csv","columns":["v"],"windows":[{"kind":"meh","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}]}]}`},
		{"end before start", `{"version":1,"files":[{"file":"a.csv","columns":["v"],"windows":[{"kind":"spike","start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}]}]}`},
		{"trailing data", `{"version":1,"files":[]} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadLabels(strings.NewReader(tt.in)); !errors.Is(err, ErrBadLabels) {
				t.Errorf("ReadLabels(%s): got %v, want ErrBadLabels", tt.in, err)
			}
		})
	}
}

func FuzzReadLabels(f *testing.F) {
	f.Add(`{"version":1,"seed":3,"files":[{"file":"a.csv","interval_ms":1000,"rows":10,"columns":["v"],"windows":[{"kind":"spike","columns":["v"],"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z"}]}]}`)
	f.Add(`{"version":1,"files":[]}`)
	f.Add(`{"version":1,"files":[{"file":"..","columns":["v"]}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ReadLabels(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadLabels) {
				t.Errorf("error %v does not wrap ErrBadLabels", err)
			}
			return
		}
		for _, fl := range l.Files {
			if !filepath.IsLocal(fl.File) || filepath.Base(fl.File) != fl.File {
				t.Errorf("accepted file name %q", fl.File)
			}
			for _, w := range fl.Windows {
				if w.End.Before(w.Start) || !w.Kind.Valid() {
					t.Errorf("accepted window %+v", w)
				}
			}
		}
		if err := l.Validate(); err != nil {
			t.Errorf("accepted labels fail Validate: %v", err)
		}
	})
}
