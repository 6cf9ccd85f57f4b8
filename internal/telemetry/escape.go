package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// escapeCtx names the part of a line whose escaping rules apply.
type escapeCtx uint8

const (
	// ctxMeasurement: comma, space and backslash are escaped.
	ctxMeasurement escapeCtx = iota
	// ctxName: tag keys, tag values and field keys; comma, equals sign,
	// space and backslash are escaped.
	ctxName
)

// special reports whether c must be escaped in ctx.
func special(c byte, ctx escapeCtx) bool {
	switch c {
	case ',', ' ', '\\':
		return true
	case '=':
		return ctx == ctxName
	}
	return false
}

// needsEscape reports whether s contains a byte that must be escaped in ctx.
func needsEscape(s string, ctx escapeCtx) bool {
	for i := 0; i < len(s); i++ {
		if special(s[i], ctx) {
			return true
		}
	}
	return false
}

func appendEscaped(dst []byte, s string, ctx escapeCtx) []byte {
	if !needsEscape(s, ctx) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if special(c, ctx) {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

// unescape returns raw with its escapes resolved: a backslash followed by a
// byte that is special in ctx (including a second backslash) stands for that
// byte; any other backslash is literal, as in InfluxDB.
func unescape(raw []byte, ctx escapeCtx) string {
	i := bytes.IndexByte(raw, '\\')
	if i < 0 {
		return string(raw)
	}
	b := make([]byte, 0, len(raw))
	b = append(b, raw[:i]...)
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) && special(raw[i+1], ctx) {
			i++
			c = raw[i]
		}
		b = append(b, c)
	}
	return string(b)
}

// unescapeString resolves the escapes of a string field value (without its
// quotes): \" stands for " and \\ for \; any other backslash is literal.
func unescapeString(raw []byte) string {
	i := bytes.IndexByte(raw, '\\')
	if i < 0 {
		return string(raw)
	}
	b := make([]byte, 0, len(raw))
	b = append(b, raw[:i]...)
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) && (raw[i+1] == '"' || raw[i+1] == '\\') {
			i++
			c = raw[i]
		}
		b = append(b, c)
	}
	return string(b)
}

// checkName reports why s cannot be a measurement, tag key, tag value or
// field key that line protocol can carry, or nil. what names it in errors.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case strings.IndexByte(s, '\n') >= 0:
		return fmt.Errorf("%s %q: contains a newline", what, s)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q: invalid UTF-8", what, s)
	}
	return nil
}

// checkTagValue is checkName for the value of tag key, formatting the
// description only on error.
func checkTagValue(key, value string) error {
	if value != "" && strings.IndexByte(value, '\n') < 0 && utf8.ValidString(value) {
		return nil
	}
	return checkName(fmt.Sprintf("tag %q value", key), value)
}

// ParseSeriesKey parses a key produced by Series.Key back into the Series.
// It reports an error wrapping ErrInvalid when key is not of the form
// measurement[,tag=value...] field.
func ParseSeriesKey(key string) (Series, error) {
	b := []byte(key)
	sp := scanTo(b, 0, ' ', ' ')
	if sp >= len(b) {
		return Series{}, fmt.Errorf("parse series key %q: missing field: %w", key, ErrInvalid)
	}
	m, tags, pe := parseSeriesPart(b[:sp], nil)
	if pe != nil {
		return Series{}, fmt.Errorf("parse series key %q: %s: %w", key, pe.msg, ErrInvalid)
	}
	rest := b[sp+1:]
	if end := scanTo(rest, 0, ' ', ' '); end < len(rest) {
		return Series{}, fmt.Errorf("parse series key %q: unescaped space in field: %w", key, ErrInvalid)
	}
	field := unescape(rest, ctxName)
	if err := checkName("field key", field); err != nil {
		return Series{}, fmt.Errorf("parse series key %q: %w: %w", key, err, ErrInvalid)
	}
	return Series{Measurement: m, Tags: tags, Field: field}, nil
}
