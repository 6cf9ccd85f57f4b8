package telemetry

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// AppendPoint appends p to dst as one line of line protocol ending in "\n",
// with its timestamp in precision prec (a coarser precision than
// milliseconds truncates toward negative infinity). It reports an error
// wrapping ErrInvalid when p cannot be written as line protocol: an empty
// or newline-containing measurement, tag or field, a measurement starting
// with "#" (a comment), duplicate tag keys, a NaN or infinite value, or a
// timestamp out of range for prec. On error dst is returned unchanged.
func AppendPoint(dst []byte, p Point, prec Precision) ([]byte, error) {
	return AppendPoints(dst, []Point{p}, prec)
}

// AppendPoints appends pts to dst as line protocol. Consecutive points of the
// same measurement, tag set and time with distinct fields share one line, so
// a load generator can write multi-field lines. Tags need not be sorted. The
// errors are those of AppendPoint; on error dst is returned unchanged.
func AppendPoints(dst []byte, pts []Point, prec Precision) ([]byte, error) {
	orig := len(dst)
	for i := 0; i < len(pts); {
		p := pts[i]
		ts, ok := prec.FromMillis(p.Time)
		if !ok {
			return dst[:orig], fmt.Errorf("encode point %d (%s): time %d ms out of range for precision %s: %w", i, p.Series.Key(), p.Time, prec, ErrInvalid)
		}
		var err error
		if dst, err = appendSeriesPart(dst, p.Series); err != nil {
			return dst[:orig], fmt.Errorf("encode point %d: %w", i, err)
		}
		j := i
		for ; j < len(pts); j++ {
			q := pts[j]
			if j > i && (q.Time != p.Time || !sameSeriesPart(p.Series, q.Series) || fieldIn(q.Series.Field, pts[i:j])) {
				break
			}
			if j > i {
				dst = append(dst, ',')
			} else {
				dst = append(dst, ' ')
			}
			if err := checkName("field key", q.Series.Field); err != nil {
				return dst[:orig], fmt.Errorf("encode point %d: %w: %w", j, err, ErrInvalid)
			}
			if math.IsNaN(q.Value) || math.IsInf(q.Value, 0) {
				return dst[:orig], fmt.Errorf("encode point %d (%s): value %v: %w", j, q.Series.Key(), q.Value, ErrInvalid)
			}
			dst = appendEscaped(dst, q.Series.Field, ctxName)
			dst = append(dst, '=')
			dst = strconv.AppendFloat(dst, q.Value, 'g', -1, 64)
		}
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, '\n')
		i = j
	}
	return dst, nil
}

func appendSeriesPart(dst []byte, s Series) ([]byte, error) {
	if err := checkName("measurement", s.Measurement); err != nil {
		return dst, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	if s.Measurement[0] == '#' {
		return dst, fmt.Errorf("measurement %q starts with \"#\": %w", s.Measurement, ErrInvalid)
	}
	dst = appendEscaped(dst, s.Measurement, ctxMeasurement)
	tags := s.Tags
	if !slices.IsSortedFunc(tags, compareTags) {
		tags = slices.Clone(tags).Sort()
	}
	for k, t := range tags {
		if k > 0 && tags[k-1].Key == t.Key {
			return dst, fmt.Errorf("duplicate tag %q: %w", t.Key, ErrInvalid)
		}
		if err := checkName("tag key", t.Key); err != nil {
			return dst, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
		if err := checkTagValue(t.Key, t.Value); err != nil {
			return dst, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
		dst = append(dst, ',')
		dst = appendEscaped(dst, t.Key, ctxName)
		dst = append(dst, '=')
		dst = appendEscaped(dst, t.Value, ctxName)
	}
	return dst, nil
}

func sameSeriesPart(a, b Series) bool {
	return a.Measurement == b.Measurement && slices.Equal(a.Tags, b.Tags)
}

func fieldIn(field string, pts []Point) bool {
	for _, p := range pts {
		if p.Series.Field == field {
			return true
		}
	}
	return false
}
