package telemetry

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// LineOptions configures a LineParser.
type LineOptions struct {
	// Precision is the unit of the timestamps in the body.
	Precision Precision
	// Now gives the server time used for lines without a timestamp. It is
	// called at most once per Parse call (once per Decoder), so that all
	// lines of a body without timestamp share one time, as in InfluxDB.
	// Nil means time.Now.
	Now func() time.Time
	// Limits bound each line; zero fields take DefaultLimits.
	Limits Limits
	// MaxErrors bounds how many LineErrors a result keeps; further rejected
	// lines are only counted in ParseResult.Rejected. Zero means 100;
	// negative means no bound.
	MaxErrors int
	// MaxCachedSeries bounds the parser's cache of series parts (measurement
	// and tag set); the cache is emptied when it is full. Zero means 4096.
	MaxCachedSeries int
}

// ParseResult is the outcome of parsing a body of line protocol.
//
// The Points' Series.Tags slices are shared between the points of a line and
// between lines with identical measurement and tag set, and may be shared
// with later results of the same parser: treat them as read-only (clone
// before modifying). The parser never modifies them either, so points may be
// handed to other goroutines.
type ParseResult struct {
	// Points holds the points of all valid lines, appended to the dst
	// passed to Parse, in line order and, within a line, in field order.
	Points []Point
	// Lines counts the valid data lines (not blank lines or comments).
	Lines int
	// StringFields counts the string fields of valid lines: they are
	// accepted but not stored.
	StringFields int
	// Rejected counts the invalid lines; Errors describes the first
	// MaxErrors of them, in line order.
	Rejected int
	Errors   LineErrors
}

// Err returns nil when every line was valid, and otherwise the LineErrors.
func (r *ParseResult) Err() error {
	if r.Rejected == 0 {
		return nil
	}
	return r.Errors
}

// LineParser parses InfluxDB line protocol into Points. It keeps caches
// between calls (interned measurements, tag sets and field keys), so reuse
// one parser for many bodies. A LineParser is not safe for concurrent use:
// give each goroutine its own, e.g. from a sync.Pool.
//
// The supported syntax is described in FORMATS.md. Each line is valid or
// rejected as a whole: a rejected line contributes no point.
type LineParser struct {
	prec      Precision
	now       func() time.Time
	lim       Limits
	maxErrs   int
	maxSeries int

	series map[string]*seriesEntry // raw series part -> parsed
	names  map[string]fieldKey     // raw field key -> unescaped
	fields []fieldVal              // scratch: the fields of the current line
	dedup  map[string]int          // scratch for lines with many fields

	nowMs   int64
	haveNow bool
}

type seriesEntry struct {
	measurement string
	tags        Tags
	// fieldKeys caches the field keys last seen at each position for this
	// series, so that repeated lines resolve keys without a map lookup.
	fieldKeys []fieldKey
	// distinct is the length of the prefix of fieldKeys whose names are
	// pairwise distinct.
	distinct int
}

// distinctPrefix returns the length of the longest prefix of keys with
// pairwise distinct names.
func distinctPrefix(keys []fieldKey) int {
	for i := range keys {
		for j := range i {
			if keys[j].name == keys[i].name {
				return i
			}
		}
	}
	return len(keys)
}

type fieldKey struct{ raw, name string }

type fieldVal struct {
	name  string
	value float64
	str   bool
}

// NewLineParser returns a parser configured by opts.
func NewLineParser(opts LineOptions) *LineParser {
	p := &LineParser{
		prec:      opts.Precision,
		now:       opts.Now,
		lim:       opts.Limits.resolve(),
		maxErrs:   opts.MaxErrors,
		maxSeries: opts.MaxCachedSeries,
		series:    make(map[string]*seriesEntry),
		names:     make(map[string]fieldKey),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.maxErrs == 0 {
		p.maxErrs = 100
	}
	if p.maxSeries <= 0 {
		p.maxSeries = 4096
	}
	return p
}

// Parse parses a whole body of line protocol. It appends the points of every
// valid line to dst and reports each invalid line in the result, so that a
// caller can store the valid lines and reject the others (InfluxDB-style
// partial writes). Lines end with "\n" or "\r\n".
func (p *LineParser) Parse(dst []Point, body []byte) ParseResult {
	p.haveNow = false
	res := ParseResult{Points: dst}
	lineNo := 0
	for len(body) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		p.parseOne(&res, line, lineNo)
	}
	return res
}

// parseOne parses one line (without its "\n") into res.
func (p *LineParser) parseOne(res *ParseResult, line []byte, lineNo int) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > p.lim.MaxLineBytes {
		p.reject(res, lineNo, limitAt(-1, "line of %d bytes exceeds limit MaxLineBytes=%d", len(line), p.lim.MaxLineBytes))
		return
	}
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i == len(line) || line[i] == '#' {
		return
	}
	pts, nstr, e := p.parseLine(res.Points, line, i)
	if e != nil {
		p.reject(res, lineNo, e)
		return
	}
	res.Points = pts
	res.Lines++
	res.StringFields += nstr
}

func (p *LineParser) reject(res *ParseResult, lineNo int, e *perr) {
	res.Rejected++
	if p.maxErrs >= 0 && len(res.Errors) >= p.maxErrs {
		return
	}
	res.Errors = append(res.Errors, &LineError{Line: lineNo, Column: e.off + 1, Kind: e.kind, Msg: e.msg})
}

// parseLine parses the data line starting at line[start] and appends its
// numeric fields to dst. It returns the number of string fields.
func (p *LineParser) parseLine(dst []Point, line []byte, start int) ([]Point, int, *perr) {
	// Series part: up to the first unescaped space.
	end := start
	if sp := bytes.IndexByte(line[start:], ' '); sp >= 0 && bytes.IndexByte(line[start:start+sp], '\\') < 0 {
		end = start + sp
	} else {
		end = scanTo(line, start, ' ', ' ')
	}
	if end == len(line) {
		return dst, 0, invalidAt(end, "missing fields")
	}
	entry, ok := p.series[string(line[start:end])]
	if !ok {
		m, tags, e := parseSeriesPart(line[start:end], &p.lim)
		if e != nil {
			if e.off >= 0 {
				e.off += start
			}
			return dst, 0, e
		}
		if len(p.series) >= p.maxSeries {
			clear(p.series)
		}
		entry = &seriesEntry{measurement: m, tags: tags}
		p.series[string(line[start:end])] = entry
	}

	// Field set.
	i := end
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i == len(line) {
		return dst, 0, invalidAt(i, "missing fields")
	}
	fields := p.fields[:0]
	lineStart := len(dst)
	direct := true // points go straight to dst; fields is unused
	nfield := 0
	hits := 0      // leading fields resolved by the positional cache
	stale := false // entry.fieldKeys changed: recompute entry.distinct
	for {
		keyStart := i
		for i < len(line) {
			c := line[i]
			if c == '=' || c == ',' || c == ' ' {
				break
			}
			if c == '\\' {
				i++
			}
			i++
		}
		if i >= len(line) || line[i] != '=' {
			return dst, 0, invalidAt(keyStart, "missing \"=\" after field key %s", quote(line[keyStart:min(i, len(line))]))
		}
		raw := line[keyStart:i]
		if nfield >= p.lim.MaxFields {
			return dst, 0, limitAt(keyStart, "more than %d fields: limit MaxFields=%d", p.lim.MaxFields, p.lim.MaxFields)
		}
		var name string
		if nfield < len(entry.fieldKeys) && entry.fieldKeys[nfield].raw == string(raw) {
			name = entry.fieldKeys[nfield].name
			if hits == nfield && nfield < entry.distinct {
				hits++
			}
		} else {
			fk, e := p.fieldName(raw, keyStart)
			if e != nil {
				return dst, 0, e
			}
			name = fk.name
			if nfield < len(entry.fieldKeys) {
				entry.fieldKeys[nfield] = fk
				// The line may still fail: keep entry.distinct true now.
				entry.distinct = min(entry.distinct, nfield)
				stale = true
			} else if nfield == len(entry.fieldKeys) && nfield < 64 {
				entry.fieldKeys = append(entry.fieldKeys, fk)
				stale = true
			}
		}
		nfield++
		i++ // '='
		valStart := i
		var fv fieldVal
		fv.name = name
		if i < len(line) && line[i] == '"' {
			i++
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(line) {
				return dst, 0, invalidAt(valStart, "field %q: unterminated string", name)
			}
			i++ // closing quote
			if i < len(line) && line[i] != ',' && line[i] != ' ' {
				return dst, 0, invalidAt(i, "field %q: unexpected %s after string", name, quote(line[i:i+1]))
			}
			fv.str = true
		} else if v, n, ok := scanDecimal(line[i:]); ok {
			fv.value = v
			i += n
		} else {
			for i < len(line) && line[i] != ',' && line[i] != ' ' {
				i++
			}
			v, e := parseFieldValue(line[valStart:i], name, valStart)
			if e != nil {
				return dst, 0, e
			}
			fv.value = v
		}
		switch {
		case direct && hits == nfield && !fv.str:
			// Every key so far came from the positional cache, whose
			// prefix of entry.distinct keys is free of duplicates: write
			// the point now, its time comes at the end of the line.
			dst = append(dst, Point{
				Series: Series{Measurement: entry.measurement, Tags: entry.tags, Field: name},
				Value:  fv.value,
			})
		case direct:
			// Switch to collecting fields, with duplicate detection.
			direct = false
			fields = fields[:0]
			for _, q := range dst[lineStart:] {
				fields = append(fields, fieldVal{name: q.Series.Field, value: q.Value})
			}
			dst = dst[:lineStart]
			fields = p.addField(fields, fv)
		default:
			fields = p.addField(fields, fv)
		}
		if i == len(line) || line[i] == ' ' {
			break
		}
		i++ // ','
		if i == len(line) || line[i] == ' ' {
			return dst, 0, invalidAt(i, "missing field after \",\"")
		}
	}
	p.fields = fields
	if stale {
		entry.distinct = distinctPrefix(entry.fieldKeys)
	}

	// Optional timestamp.
	for i < len(line) && line[i] == ' ' {
		i++
	}
	var ms int64
	if i == len(line) {
		if !p.haveNow {
			p.nowMs = p.now().UnixMilli()
			p.haveNow = true
		}
		ms = p.nowMs
	} else {
		tsStart := i
		for i < len(line) && line[i] != ' ' {
			i++
		}
		ts, ok := parseInt(line[tsStart:i])
		if !ok {
			return dst, 0, invalidAt(tsStart, "invalid timestamp %s", quote(line[tsStart:i]))
		}
		if ms, ok = p.prec.ToMillis(ts); !ok {
			return dst, 0, invalidAt(tsStart, "timestamp %d out of range for precision %s", ts, p.prec)
		}
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i != len(line) {
			return dst, 0, invalidAt(i, "unexpected %s after timestamp", quote(line[i:]))
		}
	}

	if direct {
		for j := lineStart; j < len(dst); j++ {
			dst[j].Time = ms
		}
		return dst, 0, nil
	}
	nstr := 0
	for _, f := range fields {
		if f.str {
			nstr++
			continue
		}
		dst = append(dst, Point{
			Series: Series{Measurement: entry.measurement, Tags: entry.tags, Field: f.name},
			Time:   ms,
			Value:  f.value,
		})
	}
	return dst, nstr, nil
}

// addField appends f to the fields of the line; a field key seen before in
// the line takes the later value and type (last wins, as in InfluxDB) and
// keeps its first position.
func (p *LineParser) addField(fields []fieldVal, f fieldVal) []fieldVal {
	if len(fields) < 32 {
		for j := range fields {
			if fields[j].name == f.name {
				fields[j] = f
				return fields
			}
		}
		return append(fields, f)
	}
	if len(fields) == 32 {
		if p.dedup == nil {
			p.dedup = make(map[string]int)
		}
		clear(p.dedup)
		for j, g := range fields {
			p.dedup[g.name] = j
		}
	}
	if j, ok := p.dedup[f.name]; ok {
		fields[j] = f
		return fields
	}
	p.dedup[f.name] = len(fields)
	return append(fields, f)
}

// fieldName resolves a raw field key through the parser's name cache.
func (p *LineParser) fieldName(raw []byte, off int) (fieldKey, *perr) {
	if fk, ok := p.names[string(raw)]; ok {
		return fk, nil
	}
	name := unescape(raw, ctxName)
	if name == "" {
		return fieldKey{}, invalidAt(off, "empty field key")
	}
	if e := p.lim.nameErr(off, "field key "+quoteString(name), name); e != nil {
		return fieldKey{}, e
	}
	if !utf8.ValidString(name) {
		return fieldKey{}, invalidAt(off, "field key %s: invalid UTF-8", quoteString(name))
	}
	if len(p.names) >= 4*p.maxSeries {
		clear(p.names)
	}
	fk := fieldKey{raw: string(raw), name: name}
	if fk.raw == name {
		fk.raw = name // share one allocation when the key has no escapes
	}
	p.names[fk.raw] = fk
	return fk, nil
}

// parseSeriesPart parses measurement[,key=value...] (escaped) into the
// measurement and the tags sorted by key. lim may be nil for no limits.
func parseSeriesPart(raw []byte, lim *Limits) (string, Tags, *perr) {
	if !utf8.Valid(raw) {
		return "", nil, invalidAt(-1, "measurement or tags: invalid UTF-8")
	}
	end := scanTo(raw, 0, ',', ',')
	m := unescape(raw[:end], ctxMeasurement)
	if m == "" {
		return "", nil, invalidAt(0, "missing measurement")
	}
	if lim != nil {
		if e := lim.nameErr(0, "measurement "+quoteString(m), m); e != nil {
			return "", nil, e
		}
	}
	if end == len(raw) {
		return m, nil, nil
	}
	n := 0
	for j := end; j < len(raw); j = scanTo(raw, j+1, ',', ',') {
		n++
	}
	if lim != nil && n > lim.MaxTags {
		return "", nil, limitAt(end, "%d tags exceed limit MaxTags=%d", n, lim.MaxTags)
	}
	tags := make(Tags, 0, n)
	i := end + 1
	for {
		kStart := i
		eq := scanTo(raw, i, '=', ',')
		if eq == len(raw) || raw[eq] != '=' {
			return "", nil, invalidAt(kStart, "tag %s: missing \"=\"", quote(raw[kStart:eq]))
		}
		key := unescape(raw[kStart:eq], ctxName)
		if key == "" {
			return "", nil, invalidAt(kStart, "empty tag key")
		}
		vStart := eq + 1
		vEnd := scanTo(raw, vStart, ',', '=')
		if vEnd < len(raw) && raw[vEnd] == '=' {
			return "", nil, invalidAt(vEnd, "tag %s: unescaped \"=\" in value", quoteString(key))
		}
		val := unescape(raw[vStart:vEnd], ctxName)
		if val == "" {
			return "", nil, invalidAt(vStart, "tag %s: missing value", quoteString(key))
		}
		if lim != nil {
			if e := lim.nameErr(kStart, "tag key "+quoteString(key), key); e != nil {
				return "", nil, e
			}
			if len(val) > lim.MaxTagValueBytes {
				return "", nil, limitAt(vStart, "tag %s: value of %d bytes exceeds limit MaxTagValueBytes=%d", quoteString(key), len(val), lim.MaxTagValueBytes)
			}
		}
		tags = append(tags, Tag{Key: key, Value: val})
		if vEnd == len(raw) {
			break
		}
		i = vEnd + 1
	}
	if !slices.IsSortedFunc(tags, compareTags) {
		slices.SortStableFunc(tags, compareTags)
	}
	for j := 1; j < len(tags); j++ {
		if tags[j].Key == tags[j-1].Key {
			return "", nil, invalidAt(-1, "duplicate tag %s", quoteString(tags[j].Key))
		}
	}
	return m, tags, nil
}

func compareTags(a, b Tag) int { return strings.Compare(a.Key, b.Key) }

// scanTo returns the index of the first unescaped c1 or c2 in b at or after
// i, or len(b). A backslash escapes the byte after it.
func scanTo(b []byte, i int, c1, c2 byte) int {
	for i < len(b) {
		c := b[i]
		if c == c1 || c == c2 {
			return i
		}
		if c == '\\' {
			i++
		}
		i++
	}
	return len(b)
}

// parseFieldValue parses a non-string field value: float, integer (i),
// unsigned (u) or boolean.
func parseFieldValue(v []byte, name string, off int) (float64, *perr) {
	if len(v) == 0 {
		return 0, invalidAt(off, "field %q: missing value", name)
	}
	switch last := v[len(v)-1]; last {
	case 'i', 'u':
		if len(v) >= 2 && v[len(v)-2] >= '0' && v[len(v)-2] <= '9' {
			digits := v[:len(v)-1]
			if last == 'i' {
				n, ok := parseInt(digits)
				if !ok {
					return 0, invalidAt(off, "field %q: invalid integer %s", name, quote(v))
				}
				return float64(n), nil
			}
			n, ok := parseUint(digits)
			if !ok {
				return 0, invalidAt(off, "field %q: invalid unsigned integer %s", name, quote(v))
			}
			return float64(n), nil
		}
	}
	switch c := v[0]; {
	case c == '-' || c == '.' || (c >= '0' && c <= '9'):
		if !validFloat(v) {
			return 0, invalidAt(off, "field %q: invalid number %s", name, quote(v))
		}
		f, err := strconv.ParseFloat(unsafeString(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, invalidAt(off, "field %q: number %s out of range", name, quote(v))
		}
		return f, nil
	}
	switch string(v) {
	case "t", "T", "true", "True", "TRUE":
		return 1, nil
	case "f", "F", "false", "False", "FALSE":
		return 0, nil
	}
	return 0, invalidAt(off, "field %q: invalid value %s", name, quote(v))
}

// scanDecimal parses a value of the form -?digits[.digits] with at most 15
// significant digits that ends at a ',', ' ' or the end of b, and returns it
// with its length. It reports false for anything else (exponents, suffixes,
// more digits), which the caller parses in full.
func scanDecimal(b []byte) (float64, int, bool) {
	i := 0
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	nd, frac := 0, -1
	for ; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			mant = mant*10 + uint64(c-'0')
			nd++
			if frac >= 0 {
				frac++
			}
			continue
		}
		if c == '.' && frac < 0 {
			frac = 0
			continue
		}
		if c == ',' || c == ' ' {
			break
		}
		return 0, 0, false
	}
	if nd == 0 || nd > 15 {
		return 0, 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// pow10 is a read-only table of the powers of ten exact in a float64.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// validFloat reports whether v matches -?(d+(.d*)?|.d+)([eE][+-]?d+)?,
// the float syntax of line protocol (no NaN, Inf, hex or underscores).
func validFloat(v []byte) bool {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	digits := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
		digits++
	}
	if i < len(v) && v[i] == '.' {
		i++
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		exp := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(v)
}

// parseInt parses -?digits into an int64.
func parseInt(v []byte) (int64, bool) {
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg = true
		v = v[1:]
	}
	u, ok := parseUint(v)
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// parseUint parses digits into a uint64.
func parseUint(v []byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// quote quotes b for an error message, shortened to 64 bytes.
func quote(b []byte) string { return quoteString(string(b)) }

func quoteString(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:61]) + "..."
	}
	return strconv.Quote(s)
}

// unsafeString views b as a string without copying, for map lookups and
// strconv calls that do not retain it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
