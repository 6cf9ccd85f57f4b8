package eval

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadOutput is returned (wrapped) when a scorer's output is not a valid
// scored CSV: missing columns, unparsable cells, rows out of time order, or
// a row count different from its input's.
var ErrBadOutput = errors.New("malformed scorer output")

// Scored is the parsed output of a scorer for one file: one entry per row.
type Scored struct {
	// Times are the row timestamps in Unix milliseconds, non-decreasing.
	Times []int64
	// Scores are the anomaly scores in [0, 1].
	Scores []float64
	// Flags are the is_anomaly decisions.
	Flags []bool
}

// Len returns the number of rows.
func (s Scored) Len() int { return len(s.Times) }

// ReadScored parses a scorer's output: CSV with a header naming at least the
// columns timestamp (RFC 3339), anomaly_score (a number in [0, 1]) and
// is_anomaly (0/1 or true/false), in any position. Errors wrap ErrBadOutput
// and name the line.
func ReadScored(r io.Reader) (Scored, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return Scored{}, fmt.Errorf("read scored csv header: %w: %w", ErrBadOutput, err)
	}
	ti, si, fi := -1, -1, -1
	for i, h := range header {
		switch strings.TrimSpace(h) {
		case "timestamp":
			ti = i
		case "anomaly_score":
			si = i
		case "is_anomaly":
			fi = i
		}
	}
	if ti < 0 || si < 0 || fi < 0 {
		return Scored{}, fmt.Errorf("read scored csv header %q: %w: need columns timestamp, anomaly_score and is_anomaly", strings.Join(header, ","), ErrBadOutput)
	}
	var s Scored
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return Scored{}, fmt.Errorf("read scored csv line %d: %w: %w", line, ErrBadOutput, err)
		}
		t, err := time.Parse(time.RFC3339Nano, rec[ti])
		if err != nil {
			return Scored{}, fmt.Errorf("read scored csv line %d: %w: timestamp: %w", line, ErrBadOutput, err)
		}
		ms := t.UnixMilli()
		if n := len(s.Times); n > 0 && ms < s.Times[n-1] {
			return Scored{}, fmt.Errorf("read scored csv line %d: %w: timestamp %s before the previous row's", line, ErrBadOutput, rec[ti])
		}
		sc, err := strconv.ParseFloat(strings.TrimSpace(rec[si]), 64)
		if err != nil || math.IsNaN(sc) || sc < 0 || sc > 1 {
			return Scored{}, fmt.Errorf("read scored csv line %d: %w: anomaly_score %q not a number in [0, 1]", line, ErrBadOutput, rec[si])
		}
		var flag bool
		switch strings.TrimSpace(rec[fi]) {
		case "1", "true":
			flag = true
		case "0", "false":
		default:
			return Scored{}, fmt.Errorf("read scored csv line %d: %w: is_anomaly %q not 0 or 1", line, ErrBadOutput, rec[fi])
		}
		s.Times = append(s.Times, ms)
		s.Scores = append(s.Scores, sc)
		s.Flags = append(s.Flags, flag)
	}
}
