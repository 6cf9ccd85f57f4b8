package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JSONOptions configures ParseJSON.
type JSONOptions struct {
	// Now gives the server time used for objects without a time. It is
	// called at most once per ParseJSON call. Nil means time.Now.
	Now func() time.Time
	// Limits bound each object (MaxLineBytes does not apply); zero fields
	// take DefaultLimits.
	Limits Limits
	// MaxErrors bounds how many ObjectErrors a result keeps; zero means 100,
	// negative no bound.
	MaxErrors int
}

// JSONResult is the outcome of parsing a JSON body.
type JSONResult struct {
	// Points holds the points of all valid objects, appended to the dst
	// passed to ParseJSON, in document order (fields in document order).
	Points []Point
	// Objects counts the valid objects.
	Objects int
	// StringFields counts the string fields of valid objects: accepted,
	// not stored.
	StringFields int
	// Rejected counts the invalid objects; Errors describes the first
	// MaxErrors of them.
	Rejected int
	Errors   ObjectErrors
}

// Err returns nil when every object was valid, and otherwise the
// ObjectErrors.
func (r *JSONResult) Err() error {
	if r.Rejected == 0 {
		return nil
	}
	return r.Errors
}

// ObjectError is the rejection of one point object of a JSON body.
type ObjectError struct {
	// Index is the 0-based index of the object in the array (0 for a body
	// holding a single object).
	Index int
	// Kind is ErrInvalid or ErrLimit.
	Kind error
	// Msg says what is wrong, naming the key, tag or field.
	Msg string
}

// Error returns e.g. `point[3]: field "temp": must be a number, boolean or string`.
func (e *ObjectError) Error() string { return fmt.Sprintf("point[%d]: %s", e.Index, e.Msg) }

// Unwrap returns the error kind.
func (e *ObjectError) Unwrap() error { return e.Kind }

// ObjectErrors lists the rejected objects of a JSON body, in order.
type ObjectErrors []*ObjectError

// Error names the first rejected object and how many more were rejected.
func (es ObjectErrors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	return fmt.Sprintf("%v (and %d more rejected points)", es[0], len(es)-1)
}

// Unwrap lets errors.Is match the kind of any rejected object.
func (es ObjectErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// ParseJSON parses a JSON body — one point object or an array of them, as
// specified in FORMATS.md — appending the points of every valid object to
// dst and reporting each invalid object in the result (partial writes, as
// for line protocol). A body that is not well-formed JSON, or neither an
// object nor an array, is rejected as a whole: ParseJSON then returns an
// error wrapping ErrInvalid that gives the byte offset.
func ParseJSON(dst []Point, body []byte, opts JSONOptions) (JSONResult, error) {
	jp := jsonParser{lim: opts.Limits.resolve(), now: opts.Now, maxErrs: opts.MaxErrors}
	if jp.now == nil {
		jp.now = time.Now
	}
	if jp.maxErrs == 0 {
		jp.maxErrs = 100
	}
	res := JSONResult{Points: dst}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return res, jsonSyntaxErr(dec, err)
	}
	switch tok {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return JSONResult{Points: dst}, jsonSyntaxErr(dec, err)
			}
			jp.object(&res, i, raw)
		}
		if _, err := dec.Token(); err != nil {
			return JSONResult{Points: dst}, jsonSyntaxErr(dec, err)
		}
	case json.Delim('{'):
		// Decode the whole object again from its start.
		dec = json.NewDecoder(bytes.NewReader(body))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return JSONResult{Points: dst}, jsonSyntaxErr(dec, err)
		}
		jp.object(&res, 0, raw)
	default:
		return res, fmt.Errorf("parse json points: body must be an object or an array of objects: %w", ErrInvalid)
	}
	off := int(dec.InputOffset())
	for off < len(body) && (body[off] == ' ' || body[off] == '\t' || body[off] == '\n' || body[off] == '\r') {
		off++
	}
	if off < len(body) {
		return JSONResult{Points: dst}, fmt.Errorf("parse json points: offset %d: data after the top-level value: %w", off, ErrInvalid)
	}
	return res, nil
}

func jsonSyntaxErr(dec *json.Decoder, err error) error {
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		return fmt.Errorf("parse json points: offset %d: %v: %w", se.Offset, se, ErrInvalid)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("parse json points: offset %d: unexpected end of input: %w", dec.InputOffset(), ErrInvalid)
	}
	return fmt.Errorf("parse json points: offset %d: %v: %w", dec.InputOffset(), err, ErrInvalid)
}

type jsonParser struct {
	lim     Limits
	now     func() time.Time
	maxErrs int
	nowMs   int64
	haveNow bool
}

type jsonField struct {
	name  string
	value float64
	str   bool
}

type objErr struct {
	kind error
	msg  string
}

func (jp *jsonParser) object(res *JSONResult, index int, raw json.RawMessage) {
	pts, nstr, oe := jp.decodeObject(res.Points, raw)
	if oe != nil {
		res.Rejected++
		if jp.maxErrs < 0 || len(res.Errors) < jp.maxErrs {
			res.Errors = append(res.Errors, &ObjectError{Index: index, Kind: oe.kind, Msg: oe.msg})
		}
		return
	}
	res.Points = pts
	res.Objects++
	res.StringFields += nstr
}

func invalidObj(format string, args ...any) *objErr {
	return &objErr{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

func limitObj(format string, args ...any) *objErr {
	return &objErr{kind: ErrLimit, msg: fmt.Sprintf(format, args...)}
}

// decodeObject decodes one well-formed JSON value as a point object.
func (jp *jsonParser) decodeObject(dst []Point, raw json.RawMessage) ([]Point, int, *objErr) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return dst, 0, invalidObj("must be an object, not %s", jsonKind(tok))
	}
	var (
		measurement string
		tags        Tags
		fields      []jsonField
		timeTok     json.Token
		precision   = Millisecond
		seen        = map[string]bool{}
	)
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		if seen[key] {
			return dst, 0, invalidObj("duplicate key %q", key)
		}
		seen[key] = true
		switch key {
		case "measurement":
			tok, _ := dec.Token()
			s, ok := tok.(string)
			if !ok {
				return dst, 0, invalidObj("measurement: must be a string, not %s", jsonKind(tok))
			}
			if err := checkName("measurement", s); err != nil {
				return dst, 0, invalidObj("%v", err)
			}
			if s[0] == '#' {
				return dst, 0, invalidObj("measurement %s: must not start with \"#\"", quoteString(s))
			}
			if len(s) > jp.lim.MaxNameBytes {
				return dst, 0, limitObj("measurement %s: %d bytes exceed limit MaxNameBytes=%d", quoteString(s), len(s), jp.lim.MaxNameBytes)
			}
			measurement = s
		case "tags":
			var oe *objErr
			if tags, oe = jp.decodeTags(dec); oe != nil {
				return dst, 0, oe
			}
		case "fields":
			var oe *objErr
			if fields, oe = jp.decodeFields(dec); oe != nil {
				return dst, 0, oe
			}
		case "time":
			timeTok, _ = dec.Token()
			if d, ok := timeTok.(json.Delim); ok {
				return dst, 0, invalidObj("time: must be a number or an RFC 3339 string, not %s", jsonKind(d))
			}
		case "precision":
			tok, _ := dec.Token()
			s, ok := tok.(string)
			if !ok {
				return dst, 0, invalidObj("precision: must be a string, not %s", jsonKind(tok))
			}
			p, err := ParsePrecision(s)
			if err != nil || s == "" {
				return dst, 0, invalidObj("precision %q: want ns, us, ms or s", s)
			}
			precision = p
		default:
			return dst, 0, invalidObj("unknown key %q (want measurement, tags, fields, time, precision)", key)
		}
	}
	if measurement == "" {
		return dst, 0, invalidObj("missing measurement")
	}
	if len(fields) == 0 {
		return dst, 0, invalidObj("missing fields")
	}
	ms, oe := jp.decodeTime(timeTok, precision)
	if oe != nil {
		return dst, 0, oe
	}
	nstr := 0
	for _, f := range fields {
		if f.str {
			nstr++
			continue
		}
		dst = append(dst, Point{Series: Series{Measurement: measurement, Tags: tags, Field: f.name}, Time: ms, Value: f.value})
	}
	return dst, nstr, nil
}

func (jp *jsonParser) decodeTags(dec *json.Decoder) (Tags, *objErr) {
	tok, _ := dec.Token()
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, invalidObj("tags: must be an object, not %s", jsonKind(tok))
	}
	var tags Tags
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		vt, _ := dec.Token()
		val, ok := vt.(string)
		if !ok {
			return nil, invalidObj("tag %s: must be a string, not %s", quoteString(key), jsonKind(vt))
		}
		if err := checkName("tag key", key); err != nil {
			return nil, invalidObj("%v", err)
		}
		if err := checkTagValue(key, val); err != nil {
			return nil, invalidObj("%v", err)
		}
		if len(key) > jp.lim.MaxNameBytes {
			return nil, limitObj("tag key %s: %d bytes exceed limit MaxNameBytes=%d", quoteString(key), len(key), jp.lim.MaxNameBytes)
		}
		if len(val) > jp.lim.MaxTagValueBytes {
			return nil, limitObj("tag %s: value of %d bytes exceeds limit MaxTagValueBytes=%d", quoteString(key), len(val), jp.lim.MaxTagValueBytes)
		}
		if len(tags) >= jp.lim.MaxTags {
			return nil, limitObj("more than %d tags: limit MaxTags=%d", jp.lim.MaxTags, jp.lim.MaxTags)
		}
		tags = append(tags, Tag{Key: key, Value: val})
	}
	dec.Token() // '}'
	tags.Sort()
	for i := 1; i < len(tags); i++ {
		if tags[i].Key == tags[i-1].Key {
			return nil, invalidObj("duplicate tag %s", quoteString(tags[i].Key))
		}
	}
	return tags, nil
}

func (jp *jsonParser) decodeFields(dec *json.Decoder) ([]jsonField, *objErr) {
	tok, _ := dec.Token()
	if tok != json.Delim('{') {
		return nil, invalidObj("fields: must be an object, not %s", jsonKind(tok))
	}
	var fields []jsonField
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
		if err := checkName("field key", name); err != nil {
			return nil, invalidObj("%v", err)
		}
		if len(name) > jp.lim.MaxNameBytes {
			return nil, limitObj("field key %s: %d bytes exceed limit MaxNameBytes=%d", quoteString(name), len(name), jp.lim.MaxNameBytes)
		}
		f := jsonField{name: name}
		vt, _ := dec.Token()
		switch v := vt.(type) {
		case json.Number:
			x, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(x, 0) {
				return nil, invalidObj("field %q: number %s out of range", name, v)
			}
			f.value = x
		case bool:
			if v {
				f.value = 1
			}
		case string:
			f.str = true
		default:
			return nil, invalidObj("field %q: must be a number, boolean or string, not %s", name, jsonKind(vt))
		}
		if j := slices.IndexFunc(fields, func(g jsonField) bool { return g.name == name }); j >= 0 {
			fields[j] = f // last wins, first position kept
			continue
		}
		if len(fields) >= jp.lim.MaxFields {
			return nil, limitObj("more than %d fields: limit MaxFields=%d", jp.lim.MaxFields, jp.lim.MaxFields)
		}
		fields = append(fields, f)
	}
	dec.Token() // '}'
	return fields, nil
}

// decodeTime converts the time value (nil when absent) to Unix ms.
func (jp *jsonParser) decodeTime(tok json.Token, prec Precision) (int64, *objErr) {
	switch v := tok.(type) {
	case nil:
		if !jp.haveNow {
			jp.nowMs = jp.now().UnixMilli()
			jp.haveNow = true
		}
		return jp.nowMs, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, invalidObj("time %q: not an RFC 3339 time", v)
		}
		return t.UnixMilli(), nil
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return 0, invalidObj("time %s: out of range", v)
			}
			ms, ok := prec.ToMillis(n)
			if !ok {
				return 0, invalidObj("time %s: out of range for precision %s", v, prec)
			}
			return ms, nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		ms := math.Floor(f * msPerUnit(prec))
		if err != nil || !(ms >= math.MinInt64 && ms < math.MaxInt64) {
			return 0, invalidObj("time %s: out of range for precision %s", v, prec)
		}
		return int64(ms), nil
	}
	return 0, invalidObj("time: must be a number or an RFC 3339 string, not %s", jsonKind(tok))
}

func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	}
	return fmt.Sprintf("%T", tok)
}

// AppendJSON appends pts to dst as a JSON array of point objects (see
// FORMATS.md), with times as integer Unix milliseconds. Consecutive points of
// the same measurement, tag set and time with distinct fields share one
// object. It reports an error wrapping ErrInvalid for a point that
// ParseJSON would reject (see AppendPoint); on error dst is returned
// unchanged.
func AppendJSON(dst []byte, pts []Point) ([]byte, error) {
	orig := len(dst)
	dst = append(dst, '[')
	for i := 0; i < len(pts); {
		p := pts[i]
		if err := checkName("measurement", p.Series.Measurement); err != nil {
			return dst[:orig], fmt.Errorf("encode json point %d: %w: %w", i, err, ErrInvalid)
		}
		if p.Series.Measurement[0] == '#' {
			return dst[:orig], fmt.Errorf("encode json point %d: measurement %q starts with \"#\": %w", i, p.Series.Measurement, ErrInvalid)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"measurement":`...)
		dst = appendJSONString(dst, p.Series.Measurement)
		tags := p.Series.Tags
		if !slices.IsSortedFunc(tags, compareTags) {
			tags = slices.Clone(tags).Sort()
		}
		if len(tags) > 0 {
			dst = append(dst, `,"tags":{`...)
			for k, t := range tags {
				if k > 0 && tags[k-1].Key == t.Key {
					return dst[:orig], fmt.Errorf("encode json point %d: duplicate tag %q: %w", i, t.Key, ErrInvalid)
				}
				if err := checkName("tag key", t.Key); err != nil {
					return dst[:orig], fmt.Errorf("encode json point %d: %w: %w", i, err, ErrInvalid)
				}
				if err := checkTagValue(t.Key, t.Value); err != nil {
					return dst[:orig], fmt.Errorf("encode json point %d: %w: %w", i, err, ErrInvalid)
				}
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, t.Key)
				dst = append(dst, ':')
				dst = appendJSONString(dst, t.Value)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, `,"fields":{`...)
		j := i
		for ; j < len(pts); j++ {
			q := pts[j]
			if j > i && (q.Time != p.Time || !sameSeriesPart(p.Series, q.Series) || fieldIn(q.Series.Field, pts[i:j])) {
				break
			}
			if err := checkName("field key", q.Series.Field); err != nil {
				return dst[:orig], fmt.Errorf("encode json point %d: %w: %w", j, err, ErrInvalid)
			}
			if math.IsNaN(q.Value) || math.IsInf(q.Value, 0) {
				return dst[:orig], fmt.Errorf("encode json point %d (%s): value %v: %w", j, q.Series.Key(), q.Value, ErrInvalid)
			}
			if j > i {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, q.Series.Field)
			dst = append(dst, ':')
			dst = strconv.AppendFloat(dst, q.Value, 'g', -1, 64)
		}
		dst = append(dst, `},"time":`...)
		dst = strconv.AppendInt(dst, p.Time, 10)
		dst = append(dst, '}')
		i = j
	}
	return append(dst, ']'), nil
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (checked by
// checkName), so only quotes, backslashes and control bytes need escapes.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// msPerUnit returns the milliseconds in one unit of p.
func msPerUnit(p Precision) float64 {
	switch p {
	case Nanosecond:
		return 1e-6
	case Microsecond:
		return 1e-3
	case Second:
		return 1e3
	case Minute:
		return 60e3
	case Hour:
		return 3600e3
	}
	return 1
}
