package telemetry

// Limits bound what one line (or one JSON point) may contain. A zero field
// takes its value from DefaultLimits; a negative field means no limit.
// Lengths are in bytes, after unescaping.
type Limits struct {
	// MaxLineBytes bounds a line of line protocol, without its line ending.
	MaxLineBytes int
	// MaxFields bounds the fields of a line (numeric and string).
	MaxFields int
	// MaxTags bounds the tags of a line.
	MaxTags int
	// MaxNameBytes bounds a measurement, a tag key and a field key.
	MaxNameBytes int
	// MaxTagValueBytes bounds a tag value.
	MaxTagValueBytes int
}

// DefaultLimits returns the limits used for zero fields of Limits: 64 KiB
// lines, 256 fields, 64 tags, 256-byte names and 1 KiB tag values.
func DefaultLimits() Limits {
	return Limits{
		MaxLineBytes:     64 << 10,
		MaxFields:        256,
		MaxTags:          64,
		MaxNameBytes:     256,
		MaxTagValueBytes: 1 << 10,
	}
}

// resolve returns l with zero fields defaulted and negative fields set to
// the largest int, so that checks need no special case.
func (l Limits) resolve() Limits {
	d := DefaultLimits()
	fix := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return int(^uint(0) >> 1)
		}
		return v
	}
	return Limits{
		MaxLineBytes:     fix(l.MaxLineBytes, d.MaxLineBytes),
		MaxFields:        fix(l.MaxFields, d.MaxFields),
		MaxTags:          fix(l.MaxTags, d.MaxTags),
		MaxNameBytes:     fix(l.MaxNameBytes, d.MaxNameBytes),
		MaxTagValueBytes: fix(l.MaxTagValueBytes, d.MaxTagValueBytes),
	}
}

// nameErr returns a limit error when the name s, described by what (e.g.
// `tag key "k"`), is longer than MaxNameBytes.
func (l *Limits) nameErr(off int, what string, s string) *perr {
	if len(s) > l.MaxNameBytes {
		return limitAt(off, "%s: %d bytes exceed limit MaxNameBytes=%d", what, len(s), l.MaxNameBytes)
	}
	return nil
}
