package telemetry

import (
	"fmt"
	"math"
)

// Precision is the unit of the timestamps of a body, as given by the
// precision parameter of the InfluxDB write APIs.
type Precision uint8

// Precisions. The zero value is nanoseconds, InfluxDB's default.
const (
	Nanosecond Precision = iota
	Microsecond
	Millisecond
	Second
	Minute // InfluxDB 1.x only
	Hour   // InfluxDB 1.x only
)

// ParsePrecision parses a precision parameter: "ns" or "n", "us", "u" or
// "µs", "ms", "s", and the InfluxDB 1.x forms "m" and "h". The empty string
// is nanoseconds. Other values give an error wrapping ErrInvalid.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "", "ns", "n":
		return Nanosecond, nil
	case "us", "u", "µs", "µ":
		return Microsecond, nil
	case "ms":
		return Millisecond, nil
	case "s":
		return Second, nil
	case "m":
		return Minute, nil
	case "h":
		return Hour, nil
	}
	return 0, fmt.Errorf("parse precision %q: want ns, us, ms or s: %w", s, ErrInvalid)
}

// String returns the canonical name: ns, us, ms, s, m or h.
func (p Precision) String() string {
	switch p {
	case Nanosecond:
		return "ns"
	case Microsecond:
		return "us"
	case Millisecond:
		return "ms"
	case Second:
		return "s"
	case Minute:
		return "m"
	case Hour:
		return "h"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// ToMillis converts a timestamp in precision p to Unix milliseconds. Finer
// precisions are truncated toward negative infinity (floor), so that -1ns is
// -1ms and 1999999ns is 1ms. It reports false when the result does not fit
// in an int64.
func (p Precision) ToMillis(ts int64) (int64, bool) {
	switch p {
	case Nanosecond:
		return floorDiv(ts, 1e6), true
	case Microsecond:
		return floorDiv(ts, 1e3), true
	case Millisecond:
		return ts, true
	case Second:
		return mulCheck(ts, 1e3)
	case Minute:
		return mulCheck(ts, 60e3)
	case Hour:
		return mulCheck(ts, 3600e3)
	}
	return 0, false
}

// FromMillis converts Unix milliseconds to a timestamp in precision p,
// truncating toward negative infinity for coarser precisions. It reports
// false when the result does not fit in an int64.
func (p Precision) FromMillis(ms int64) (int64, bool) {
	switch p {
	case Nanosecond:
		return mulCheck(ms, 1e6)
	case Microsecond:
		return mulCheck(ms, 1e3)
	case Millisecond:
		return ms, true
	case Second:
		return floorDiv(ms, 1e3), true
	case Minute:
		return floorDiv(ms, 60e3), true
	case Hour:
		return floorDiv(ms, 3600e3), true
	}
	return 0, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func mulCheck(a, b int64) (int64, bool) {
	if a > math.MaxInt64/b || a < math.MinInt64/b {
		return 0, false
	}
	return a * b, true
}
