package detect

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrBadCSV is wrapped by ScoreCSV errors caused by the input; the message
// names the line and, where it applies, the column.
var ErrBadCSV = errors.New("detect: bad csv input")

// CSVOptions configures ScoreCSV. The zero value is not ready: start from
// DefaultCSVOptions.
type CSVOptions struct {
	// Config tunes the per-column univariate ensembles.
	Config Config
	// Device tunes the multivariate detector used when the file has several
	// value columns.
	Device DeviceConfig
	// DeviceOnly, when the file has several value columns, runs only the
	// device detector and not the per-column ensembles.
	DeviceOnly bool
	// HoldDeviceAlarms flags every row of a multivariate alarm, not only its
	// first row: the alarm is held while the device statistic stays over its
	// limit (plus DeviceConfig.Hold rows). Multi-column files are typically
	// labelled by region and scored row by row, which wants it; event
	// scoring (first detection rewarded, every flagged row outside a window
	// charged) does not: set it false there. It has no effect on a file with
	// one value column. Default true.
	HoldDeviceAlarms bool
	// Size is the input size in bytes when known (0 otherwise); it is passed
	// to Progress.
	Size int64
	// Progress, when set, is called every ProgressEvery rows and once at the
	// end with the rows done and bytes read so far.
	Progress func(rows, bytes, size int64)
	// ProgressEvery is the number of rows between Progress calls. Default
	// 10000.
	ProgressEvery int64
}

// DefaultCSVOptions returns options with the default detector configs.
func DefaultCSVOptions() CSVOptions {
	return CSVOptions{Config: DefaultConfig(), Device: DefaultDeviceConfig(), HoldDeviceAlarms: true, ProgressEvery: 10000}
}

// CSVStats summarises a ScoreCSV run.
type CSVStats struct {
	Rows      int64    // data rows scored
	Anomalies int64    // rows with is_anomaly = 1
	Columns   []string // value column names (scored)
	Labels    []string // label columns, passed through unscored
	Missing   int64    // blank or NaN cells
}

// maxQuietScore is the largest anomaly_score ScoreCSV prints on a row that
// is not anomalous: the largest six-decimal value under 0.5.
const maxQuietScore = 0.499999

// maxCSVColumns bounds the value columns of one file.
const maxCSVColumns = maxSensors

// ScoreCSV reads a CSV file with a header whose first column is a timestamp
// (RFC 3339, "2006-01-02 15:04:05", Unix seconds or Unix milliseconds; the
// form is detected from the first row) followed by one or more numeric
// columns, and writes the same rows with two more columns: anomaly_score in
// [0, 1], graded by the strength of the evidence, and is_anomaly (0 or 1),
// which is 1 exactly when anomaly_score >= 0.5. One value column is scored by a univariate
// Ensemble; several are one device: a DeviceDetector over all of them plus
// one Ensemble per column (unless DeviceOnly), and a row is anomalous when
// any of them says so. Rows are scored one by one in file order, exactly as
// the live engine would see them. Blank, "NaN", "NA" and "null" cells are
// missing readings. The delimiter is ',' unless the header has ';' and no ','.
// Columns named label, labels, anomaly, changepoint, is_pa or ground_truth
// (any case) are ground truth: copied to the output, never scored; columns
// named anomaly_score or is_anomaly (an earlier run's output) are replaced.
// A leading row-index column (unnamed, "index", "Unnamed: 0") before a
// column named timestamp, datetime, time, date or ts is copied, not read as
// the time.
func ScoreCSV(ctx context.Context, in io.Reader, out io.Writer, opts CSVOptions) (CSVStats, error) {
	var stats CSVStats
	if err := errors.Join(opts.Config.Validate(), opts.Device.Validate()); err != nil {
		return stats, fmt.Errorf("score csv: %w", err)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 10000
	}
	cr := &countingReader{r: in}
	br := bufio.NewReaderSize(cr, 64<<10)
	headLine, err := br.ReadString('\n')
	if err != nil && (err != io.EOF || headLine == "") {
		if err == io.EOF {
			return stats, fmt.Errorf("score csv: line 1: %w: empty input, want a header", ErrBadCSV)
		}
		return stats, fmt.Errorf("score csv: read header: %w", err)
	}
	delim := ','
	if strings.Contains(headLine, ";") && !strings.Contains(headLine, ",") {
		delim = ';'
	}
	r := csv.NewReader(io.MultiReader(strings.NewReader(headLine), br))
	r.Comma = delim
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return stats, fmt.Errorf("score csv: line 1: %w: %w", ErrBadCSV, err)
	}
	header = slices.Clone(header) // the reader reuses its record
	if len(header) < 2 {
		return stats, fmt.Errorf("score csv: line 1: %w: %d columns, want a timestamp and at least one value column", ErrBadCSV, len(header))
	}
	if len(header)-1 > maxCSVColumns {
		return stats, fmt.Errorf("score csv: line 1: %w: %d value columns, limit %d", ErrBadCSV, len(header)-1, maxCSVColumns)
	}
	if len(header[0]) >= 3 && header[0][:3] == "\xef\xbb\xbf" {
		header[0] = header[0][3:] // UTF-8 byte order mark
	}
	// Value columns are scored; label columns are passed through unscored
	// (a sensor must never see the answer), and an earlier run's
	// anomaly_score and is_anomaly are replaced by this run's.
	// The timestamp is the first column, unless a later one is named like
	// a time and the ones before it are not (a row index written by a
	// data-frame library: ",timestamp,value" or "Unnamed: 0,datetime,...");
	// the columns before it are copied, not scored.
	tc := timeColumn(header)
	var cols []int // indexes of the scored columns in a record
	keep := make([]bool, len(header))
	for i := 0; i <= tc; i++ {
		keep[i] = true
	}
	for i := tc + 1; i < len(header); i++ {
		switch labelColumn(header[i]) {
		case colValue:
			cols = append(cols, i)
			keep[i] = true
			stats.Columns = append(stats.Columns, header[i])
		case colLabel:
			keep[i] = true
			stats.Labels = append(stats.Labels, header[i])
		}
	}
	if len(cols) == 0 {
		return stats, fmt.Errorf("score csv: line 1: %w: no value column: %q are label or score columns, which are not scored", ErrBadCSV, header[1:])
	}
	k := len(cols)

	w := csv.NewWriter(out)
	w.Comma = delim
	outRec := make([]string, 0, len(header)+2)
	for i, h := range header {
		if keep[i] {
			outRec = append(outRec, h)
		}
	}
	outRec = append(outRec, "anomaly_score", "is_anomaly")
	if err := w.Write(outRec); err != nil {
		return stats, fmt.Errorf("score csv: write header: %w", err)
	}

	var ens []*Ensemble
	if k == 1 || !opts.DeviceOnly {
		ens = make([]*Ensemble, k)
		for i := range ens {
			ens[i] = NewEnsemble(opts.Config)
		}
	}
	var dev *DeviceDetector
	if k > 1 {
		dev = NewDeviceDetector(opts.Device, stats.Columns)
	}
	vals := make([]float64, k)
	var tp timeParser
	for line := 2; ; line++ {
		if stats.Rows%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return stats, fmt.Errorf("score csv: line %d: %w", line, err)
			}
		}
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return stats, fmt.Errorf("score csv: line %d: %w: %w", pe.Line, ErrBadCSV, err)
			}
			return stats, fmt.Errorf("score csv: read line %d: %w", line, err)
		}
		line, _ = r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		if len(rec) != len(header) {
			return stats, fmt.Errorf("score csv: line %d: %w: %d fields, want %d", line, ErrBadCSV, len(rec), len(header))
		}
		t, err := tp.parse(rec[tc])
		if err != nil {
			return stats, fmt.Errorf("score csv: line %d, column %q: %w: %w", line, header[tc], ErrBadCSV, err)
		}
		for i, c := range cols {
			v, missing, err := parseValue(rec[c])
			if err != nil {
				return stats, fmt.Errorf("score csv: line %d, column %q: %w: %w", line, header[c], ErrBadCSV, err)
			}
			if missing {
				stats.Missing++
			}
			vals[i] = v
		}

		score, anomaly := 0.0, false
		merge := func(res Result) {
			if res.Anomaly && !res.Onset && !opts.HoldDeviceAlarms {
				// A held multivariate alarm: report it well under the
				// threshold, like a univariate rest period, so that a
				// scorer thresholding anomaly_score lower does not flag
				// the whole hold.
				res.Anomaly, res.Score = false, restScale*0.5
			}
			score = max(score, res.Score)
			anomaly = anomaly || res.Anomaly
		}
		for i, e := range ens {
			if math.IsNaN(vals[i]) {
				if res, ok := e.Silent(t); ok {
					merge(res)
				}
				continue
			}
			merge(e.Update(t, vals[i]))
		}
		if dev != nil {
			merge(dev.Update(t, vals))
		}
		if anomaly {
			stats.Anomalies++
		}

		outRec = outRec[:0]
		for i, f := range rec {
			if keep[i] {
				outRec = append(outRec, f)
			}
		}
		flag := "0"
		if anomaly {
			flag = "1"
		}
		// is_anomaly is 1 exactly when the printed anomaly_score is at
		// least 0.5, whatever the configured thresholds, so a scorer that
		// thresholds the score at 0.5 sees the same alarms. (Printed with
		// six decimals, a score just under 0.5 would round up to it.)
		if anomaly {
			score = max(score, 0.5)
		} else {
			score = min(score, maxQuietScore)
		}
		outRec = append(outRec, strconv.FormatFloat(score, 'f', 6, 64), flag)
		if err := w.Write(outRec); err != nil {
			return stats, fmt.Errorf("score csv: write line %d: %w", line, err)
		}
		stats.Rows++
		if opts.Progress != nil && stats.Rows%opts.ProgressEvery == 0 {
			opts.Progress(stats.Rows, cr.n, opts.Size)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return stats, fmt.Errorf("score csv: write: %w", err)
	}
	if opts.Progress != nil {
		opts.Progress(stats.Rows, cr.n, opts.Size)
	}
	return stats, nil
}

// timeColumn returns the index of the timestamp column of header: the
// first column named like a time (timestamp, datetime, time, date, ts) if
// every column before it is an unnamed or index-like column, else 0.
func timeColumn(header []string) int {
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "timestamp", "datetime", "time", "date", "ts":
			return i
		case "", "index", "idx", "id", "row":
			continue
		}
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(h)), "unnamed") {
			continue // pandas' "Unnamed: 0"
		}
		return 0
	}
	return 0
}

// Kinds of input column.
const (
	colValue = iota // a sensor: scored
	colLabel        // a ground-truth label: passed through, not scored
	colScore        // an earlier run's output: dropped, replaced
)

// labelColumn classifies a header name. Benchmark files carry their labels
// next to the readings (NAB's label, SKAB's anomaly and changepoint); a
// detector that scored them would be reading the answer.
func labelColumn(name string) int {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "label", "labels", "anomaly", "changepoint", "is_pa", "ground_truth":
		return colLabel
	case "anomaly_score", "is_anomaly":
		return colScore
	}
	return colValue
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseValue parses a numeric cell; blank and NaN-like cells are missing.
func parseValue(s string) (float64, bool, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "nan", "na", "null", "none":
		return math.NaN(), true, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("value %q is not a number", s)
	}
	if math.IsInf(v, 0) {
		return math.NaN(), true, nil
	}
	return v, false, nil
}

// Timestamp forms ScoreCSV detects.
const (
	tsUnknown = iota
	tsUnixS
	tsUnixMS
	tsLayout
)

var tsLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04",
	"2006-01-02",
}

// unixMSCutoff separates Unix seconds from milliseconds: 1e11 seconds is the
// year 5138, 1e11 ms is 1973.
const unixMSCutoff = 1e11

// timeParser detects the timestamp form from the first row and keeps it.
type timeParser struct {
	form   int
	layout string
}

// parse returns the timestamp in Unix milliseconds.
func (p *timeParser) parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty timestamp")
	}
	if p.form == tsUnknown {
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			p.form = tsUnixS
			if math.Abs(f) >= unixMSCutoff {
				p.form = tsUnixMS
			}
		} else {
			for _, l := range tsLayouts {
				if _, err := time.Parse(l, s); err == nil {
					p.form, p.layout = tsLayout, l
					break
				}
			}
			if p.form == tsUnknown {
				return 0, fmt.Errorf("timestamp %q: want RFC 3339, \"2006-01-02 15:04:05\", Unix seconds or milliseconds", s)
			}
		}
	}
	switch p.form {
	case tsUnixS, tsUnixMS:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e15 {
			return 0, fmt.Errorf("timestamp %q: want a Unix time like the first row", s)
		}
		if p.form == tsUnixS {
			f *= 1000
		}
		return int64(math.Round(f)), nil
	}
	ts, err := time.Parse(p.layout, s)
	if err != nil {
		for _, l := range tsLayouts { // tolerate a change of form, e.g. fractional seconds
			if ts, err = time.Parse(l, s); err == nil {
				break
			}
		}
		if err != nil {
			return 0, fmt.Errorf("timestamp %q: want the form of the first row (%s)", s, p.layout)
		}
	}
	return ts.UnixMilli(), nil
}
