package benchdata

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// ErrMalformed is returned (wrapped) when benchmark input is malformed; the
// error names the file and, for CSV and label content, the line or key.
var ErrMalformed = errors.New("malformed benchmark data")

// Options tunes an import. The zero value is valid.
type Options struct {
	// Progress, if not nil, is called after each file is written: i of n
	// files done, its labels, and the rows dropped as out of time order.
	Progress func(i, n int, f simulate.FileLabels, dropped int)
}

// Summary counts what an import wrote.
type Summary struct {
	Files   int // CSV files written
	Rows    int // data rows written
	Windows int // labelled windows
	// Dropped is the number of rows dropped because their timestamp was
	// earlier than the previous written row's.
	Dropped int
	// Warnings are problems that did not stop the import, such as a data
	// file without labels (it gets no windows).
	Warnings []string
}

// table is one parsed benchmark file: rows in time order.
type table struct {
	columns   []string    // value columns
	times     []time.Time // one per row
	cells     []string    // len(times)*len(columns) verbatim values
	anomalous []bool      // one per row, when labelled
	labelled  bool        // the file has an anomaly column
	dropped   int         // rows dropped as out of time order
}

func (t *table) add(ts time.Time, cells []string, anomalous bool) {
	if n := len(t.times); n > 0 && ts.Before(t.times[n-1]) {
		t.dropped++
		return
	}
	t.times = append(t.times, ts)
	t.cells = append(t.cells, cells...)
	t.anomalous = append(t.anomalous, anomalous)
}

// medianStepMs returns the median step between consecutive rows in
// milliseconds, or def when there are fewer than two rows.
func (t *table) medianStepMs(def int64) int64 {
	if len(t.times) < 2 {
		return def
	}
	steps := make([]int64, len(t.times)-1)
	for i := range steps {
		steps[i] = t.times[i+1].Sub(t.times[i]).Milliseconds()
	}
	slices.Sort(steps)
	return steps[len(steps)/2]
}

// timeLayouts are the accepted timestamp layouts; a fractional second is
// accepted after the seconds of any of them. Times without a zone are UTC.
var timeLayouts = [...]string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not like 2014-04-10 00:00:00", s)
}

// csvReader returns a reader for a benchmark CSV with comma as separator.
func csvReader(r io.Reader, comma rune) *csv.Reader {
	cr := csv.NewReader(r)
	cr.Comma = comma
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	return cr
}

// readErr wraps a CSV read error of file, naming its line.
func readErr(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s line %d: %w: %w", file, pe.Line, ErrMalformed, pe.Err)
	}
	return fmt.Errorf("read %s: %w", file, err)
}

func lineErr(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%s line %d: %w: %s", file, line, ErrMalformed, fmt.Sprintf(format, args...))
}

// checkNumber returns the trimmed cell, or an error when it is not a number.
func checkNumber(cell string) (string, error) {
	v := strings.TrimSpace(cell)
	if _, err := strconv.ParseFloat(v, 64); err != nil {
		return "", fmt.Errorf("value %q is not a number", cell)
	}
	return v, nil
}

// listCSV returns the paths, relative to dir with '/' separators, of every
// .csv file under dir, in lexical order.
func listCSV(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".csv") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list %s: no CSV files", dir)
	}
	return out, nil
}

// corpusName returns the corpus file name of the data file at rel:
// <folder>_<name>.csv, the folder's separators replaced by '_'.
func corpusName(rel string) string {
	base := strings.TrimSuffix(path.Base(rel), path.Ext(rel)) + ".csv"
	dir := path.Dir(rel)
	if dir == "." {
		return base
	}
	return strings.ReplaceAll(dir, "/", "_") + "_" + base
}

// writeTable writes t as a corpus CSV file: timestamp, then its columns.
func writeTable(p string, t *table) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	bw.WriteString("timestamp")
	for _, c := range t.columns {
		bw.WriteByte(',')
		bw.WriteString(c)
	}
	bw.WriteByte('\n')
	var buf []byte
	nc := len(t.columns)
	for i, ts := range t.times {
		buf = ts.AppendFormat(buf[:0], simulate.CSVTimeFormat)
		for _, v := range t.cells[i*nc : (i+1)*nc] {
			buf = append(buf, ',')
			buf = append(buf, v...)
		}
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	err = bw.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// importer holds what both imports share: the output directory, the
// labels and summary being built and the names written.
type importer struct {
	out     string
	opts    Options
	labels  simulate.Labels
	sum     Summary
	written map[string]string // corpus name → data file
}

func newImporter(out string, opts Options) (*importer, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	return &importer{out: out, opts: opts, labels: simulate.Labels{Version: simulate.LabelsVersion}, written: map[string]string{}}, nil
}

func (im *importer) warn(format string, args ...any) {
	im.sum.Warnings = append(im.sum.Warnings, fmt.Sprintf(format, args...))
}

// write writes one file of the corpus and records its labels.
func (im *importer) write(i, n int, rel string, t *table, interval int64, windows []simulate.Window) error {
	name := corpusName(rel)
	if prev, ok := im.written[name]; ok {
		return fmt.Errorf("%s and %s both map to corpus file %s", prev, rel, name)
	}
	im.written[name] = rel
	if err := writeTable(filepath.Join(im.out, name), t); err != nil {
		return err
	}
	if windows == nil {
		windows = []simulate.Window{}
	}
	fl := simulate.FileLabels{File: name, IntervalMs: interval, Rows: len(t.times), Columns: t.columns, Windows: windows}
	im.labels.Files = append(im.labels.Files, fl)
	im.sum.Files++
	im.sum.Rows += fl.Rows
	im.sum.Windows += len(windows)
	im.sum.Dropped += t.dropped
	if im.opts.Progress != nil {
		im.opts.Progress(i, n, fl, t.dropped)
	}
	return nil
}

// finish validates and writes the labels file.
func (im *importer) finish() (simulate.Labels, Summary, error) {
	if err := im.labels.Validate(); err != nil {
		return simulate.Labels{}, im.sum, err
	}
	b, err := json.MarshalIndent(im.labels, "", "  ")
	if err != nil {
		return simulate.Labels{}, im.sum, err
	}
	if err := os.WriteFile(filepath.Join(im.out, simulate.LabelsFile), append(b, '\n'), 0o644); err != nil {
		return simulate.Labels{}, im.sum, err
	}
	return im.labels, im.sum, nil
}

// convertFile reads the data file rel (full path full) of an import and
// returns its table, reporting interval in ms and windows; it may warn.
type convertFile func(im *importer, full, rel string) (*table, int64, []simulate.Window, error)

// importAll converts every CSV file under data with convert into a corpus
// in out; after, if not nil, runs once all files are written, before the
// labels are. op ("import nab") prefixes every error.
func importAll(ctx context.Context, op, data, out string, opts Options, convert convertFile, after func(im *importer)) (simulate.Labels, Summary, error) {
	files, err := listCSV(data)
	if err != nil {
		return simulate.Labels{}, Summary{}, fmt.Errorf("%s: %w", op, err)
	}
	im, err := newImporter(out, opts)
	if err != nil {
		return simulate.Labels{}, Summary{}, fmt.Errorf("%s: %w", op, err)
	}
	for i, rel := range files {
		if err := ctx.Err(); err != nil {
			return simulate.Labels{}, im.sum, fmt.Errorf("%s: %w", op, err)
		}
		t, interval, ws, err := convert(im, filepath.Join(data, filepath.FromSlash(rel)), rel)
		if err != nil {
			return simulate.Labels{}, im.sum, fmt.Errorf("%s: %w", op, err)
		}
		if err := im.write(i+1, len(files), rel, t, interval, ws); err != nil {
			return simulate.Labels{}, im.sum, fmt.Errorf("%s: %w", op, err)
		}
	}
	if after != nil {
		after(im)
	}
	l, sum, err := im.finish()
	if err != nil {
		return simulate.Labels{}, sum, fmt.Errorf("%s: %w", op, err)
	}
	return l, sum, nil
}
