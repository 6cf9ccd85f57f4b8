// Package telemetry defines Vigil's data model — tags, series and points —
// and the codecs that turn wire formats (InfluxDB line protocol, JSON) into it.
//
// A point in line protocol carries several fields; Vigil stores one series
// per numeric field: a Series is a measurement, a sorted tag set and one
// field name. Timestamps are Unix milliseconds: Vigil's time resolution is
// one millisecond in every backend.
//
// LineParser and Decoder read InfluxDB line protocol, ParseJSON reads Vigil's
// JSON points; AppendPoints and AppendJSON write them. FORMATS.md, beside
// this package, specifies both formats, their escaping, limits and errors.
package telemetry

import (
	"slices"
	"strings"
	"time"
	"unsafe"
)

// DeviceTag is the tag key that names the device a series belongs to.
const DeviceTag = "device"

// Tag is one key=value pair of a series' tag set.
type Tag struct {
	Key   string
	Value string
}

// Tags is a tag set. Functions that build series keep it sorted by key, with
// unique keys.
type Tags []Tag

// Get returns the value of key and whether it is present.
func (ts Tags) Get(key string) (string, bool) {
	for _, t := range ts {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Sort sorts the tag set by key in place and returns it.
func (ts Tags) Sort() Tags {
	slices.SortFunc(ts, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	return ts
}

// Series identifies one stream of numeric readings: measurement, tag set and
// field. Two Series are the same series when their Keys are equal.
type Series struct {
	Measurement string
	Tags        Tags // sorted by key, unique keys
	Field       string
}

// NewSeries returns a Series with its tags sorted by key. It copies tags.
func NewSeries(measurement string, tags Tags, field string) Series {
	cp := slices.Clone(tags).Sort()
	return Series{Measurement: measurement, Tags: cp, Field: field}
}

// Device returns the value of the device tag, or "" when the series has none.
func (s Series) Device() string {
	v, _ := s.Tags.Get(DeviceTag)
	return v
}

// Key returns the canonical, unique string form of the series:
// measurement,tag1=v1,tag2=v2 field — with line-protocol escaping (see
// FORMATS.md: commas and spaces in the measurement; commas, equals signs and
// spaces in tag keys, tag values and the field; backslashes everywhere), so
// that ParseSeriesKey(s.Key()) returns s again for every series whose tags are
// sorted with unique keys. Distinct series have distinct keys.
func (s Series) Key() string {
	n := len(s.Measurement) + len(s.Field) + 1
	for _, t := range s.Tags {
		n += len(t.Key) + len(t.Value) + 2
	}
	b := s.AppendKey(make([]byte, 0, n+8))
	// b is not referenced elsewhere and never modified again.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// AppendKey appends s.Key() to dst and returns the extended buffer.
func (s Series) AppendKey(dst []byte) []byte {
	dst = appendEscaped(dst, s.Measurement, ctxMeasurement)
	for _, t := range s.Tags {
		dst = append(dst, ',')
		dst = appendEscaped(dst, t.Key, ctxName)
		dst = append(dst, '=')
		dst = appendEscaped(dst, t.Value, ctxName)
	}
	dst = append(dst, ' ')
	return appendEscaped(dst, s.Field, ctxName)
}

// String returns s.Key().
func (s Series) String() string { return s.Key() }

// Point is one numeric reading of one series.
type Point struct {
	Series Series
	// Time is the reading's timestamp in Unix milliseconds.
	Time  int64
	Value float64
}

// Millis converts t to Unix milliseconds, Vigil's time unit.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts Unix milliseconds to a UTC time.Time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
