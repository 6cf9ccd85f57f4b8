package telemetry

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testNow is the server time of the tests: 2023-11-14T22:13:20Z.
var testNow = time.Unix(1700000000, 0)

const testNowMs = 1700000000000

func fixedNow() time.Time { return testNow }

// pt builds a Point; tags are given as key, value pairs.
func pt(measurement, field string, ms int64, v float64, kv ...string) Point {
	var tags Tags
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, Tag{Key: kv[i], Value: kv[i+1]})
	}
	if len(tags) > 0 {
		tags.Sort()
	}
	return Point{Series: Series{Measurement: measurement, Tags: tags, Field: field}, Time: ms, Value: v}
}

func TestParseLineProtocol(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		prec      Precision
		want      []Point
		wantLines int
		wantStr   int
	}{
		{
			name:      "measurement tags fields timestamp",
			in:        "cpu,host=a,region=eu usage=1.5,idle=2i 1700000000123456789",
			want:      []Point{pt("cpu", "usage", 1700000000123, 1.5, "host", "a", "region", "eu"), pt("cpu", "idle", 1700000000123, 2, "host", "a", "region", "eu")},
			wantLines: 1,
		},
		{
			name:      "tags are sorted",
			in:        "m,b=2,a=1,c=3 f=1 0",
			want:      []Point{pt("m", "f", 0, 1, "a", "1", "b", "2", "c", "3")},
			wantLines: 1,
		},
		{
			name:      "no tags",
			in:        "m f=1 0",
			want:      []Point{pt("m", "f", 0, 1)},
			wantLines: 1,
		},
		{
			name:      "no timestamp takes server time",
			in:        "m f=1\nm g=2",
			want:      []Point{pt("m", "f", testNowMs, 1), pt("m", "g", testNowMs, 2)},
			wantLines: 2,
		},
		{
			name:      "measurement escapes comma and space",
			in:        `my\ meas\,ure f=1 0`,
			want:      []Point{pt("my meas,ure", "f", 0, 1)},
			wantLines: 1,
		},
		{
			name:      "measurement may contain an unescaped equals sign",
			in:        `a=b f=1 0`,
			want:      []Point{pt("a=b", "f", 0, 1)},
			wantLines: 1,
		},
		{
			name:      "tag key and value escape comma, equals sign and space",
			in:        `m,k\ 1\,x\=y=v\ 1\,2\=3 f=1 0`,
			want:      []Point{pt("m", "f", 0, 1, "k 1,x=y", "v 1,2=3")},
			wantLines: 1,
		},
		{
			name:      "field key escapes comma, equals sign and space",
			in:        `m f\ 1\,a\=b=1 0`,
			want:      []Point{pt("m", "f 1,a=b", 0, 1)},
			wantLines: 1,
		},
		{
			name:      "backslashes: doubled is one, before other bytes literal",
			in:        `m\x\\y,t=a\b,u=c\\ f\\g=1,h\=\\=2 0`,
			want:      []Point{pt(`m\x\y`, `f\g`, 0, 1, "t", `a\b`, "u", `c\`), pt(`m\x\y`, `h=\`, 0, 2, "t", `a\b`, "u", `c\`)},
			wantLines: 1,
		},
		{
			name:      "quotes in names are literal",
			in:        `"m",t="x" "f"=1 0`,
			want:      []Point{pt(`"m"`, `"f"`, 0, 1, "t", `"x"`)},
			wantLines: 1,
		},
		{
			name:      "UTF-8 names",
			in:        "mé,tag=🍭 f°=1 0",
			want:      []Point{pt("mé", "f°", 0, 1, "tag", "🍭")},
			wantLines: 1,
		},
		{
			name:      "string fields are counted, not stored",
			in:        `m s="a \"q\" \\ b, c=d",f=1,e="" 0`,
			want:      []Point{pt("m", "f", 0, 1)},
			wantLines: 1,
			wantStr:   2,
		},
		{
			name:      "string field with escaped space and backslash before quote",
			in:        `m s="x\\",f=2 0`,
			want:      []Point{pt("m", "f", 0, 2)},
			wantLines: 1,
			wantStr:   1,
		},
		{
			name: "float forms",
			in:   "m a=1e3,b=-1.5E-3,c=.5,d=1.,e=-0,f=1E+2,g=123456789012345678,h=0.1,i=1234567.8912345678 0",
			want: []Point{
				pt("m", "a", 0, 1000), pt("m", "b", 0, -0.0015), pt("m", "c", 0, 0.5), pt("m", "d", 0, 1),
				pt("m", "e", 0, 0), pt("m", "f", 0, 100), pt("m", "g", 0, 123456789012345678), pt("m", "h", 0, 0.1),
				pt("m", "i", 0, 1234567.8912345678),
			},
			wantLines: 1,
		},
		{
			name:      "integers",
			in:        "m a=-42i,b=9223372036854775807i,c=0i,d=-9223372036854775808i 0",
			want:      []Point{pt("m", "a", 0, -42), pt("m", "b", 0, 9223372036854775807), pt("m", "c", 0, 0), pt("m", "d", 0, -9223372036854775808)},
			wantLines: 1,
		},
		{
			name:      "unsigned integers",
			in:        "m a=18446744073709551615u,b=0u,c=7u 0",
			want:      []Point{pt("m", "a", 0, 18446744073709551615), pt("m", "b", 0, 0), pt("m", "c", 0, 7)},
			wantLines: 1,
		},
		{
			name: "booleans",
			in:   "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 0",
			want: []Point{
				pt("m", "a", 0, 1), pt("m", "b", 0, 1), pt("m", "c", 0, 1), pt("m", "d", 0, 1), pt("m", "e", 0, 1),
				pt("m", "f", 0, 0), pt("m", "g", 0, 0), pt("m", "h", 0, 0), pt("m", "i", 0, 0), pt("m", "j", 0, 0),
			},
			wantLines: 1,
		},
		{
			name:      "comments, blank lines and CRLF",
			in:        "# comment\n\n   \r\nm f=1 0\r\n  # indented comment\nm f=2 1000000\r\n",
			want:      []Point{pt("m", "f", 0, 1), pt("m", "f", 1, 2)},
			wantLines: 2,
		},
		{
			name:      "extra spaces around sections",
			in:        "  m,t=a   f=1,g=2   5000000   ",
			want:      []Point{pt("m", "f", 5, 1, "t", "a"), pt("m", "g", 5, 2, "t", "a")},
			wantLines: 1,
		},
		{
			name:      "nanoseconds truncate toward negative infinity",
			in:        "m f=1 -1\nm f=2 1999999\nm f=3 -1000000",
			want:      []Point{pt("m", "f", -1, 1), pt("m", "f", 1, 2), pt("m", "f", -1, 3)},
			wantLines: 3,
		},
		{
			name:      "precision us",
			in:        "m f=1 1700000000123456",
			prec:      Microsecond,
			want:      []Point{pt("m", "f", 1700000000123, 1)},
			wantLines: 1,
		},
		{
			name:      "precision ms",
			in:        "m f=1 1700000000123",
			prec:      Millisecond,
			want:      []Point{pt("m", "f", 1700000000123, 1)},
			wantLines: 1,
		},
		{
			name:      "precision s",
			in:        "m f=1 1700000000\nm f=2 -2",
			prec:      Second,
			want:      []Point{pt("m", "f", 1700000000000, 1), pt("m", "f", -2000, 2)},
			wantLines: 2,
		},
		{
			name:      "duplicate field: last value wins, first position kept",
			in:        "m a=1,b=2,a=3 0",
			want:      []Point{pt("m", "a", 0, 3), pt("m", "b", 0, 2)},
			wantLines: 1,
		},
		{
			name:      "duplicate field: a later string drops the number",
			in:        `m a=1,a="x" 0`,
			wantLines: 1,
			wantStr:   1,
		},
		{
			name:      "duplicate field: a later number replaces the string",
			in:        `m a="x",a=1 0`,
			want:      []Point{pt("m", "a", 0, 1)},
			wantLines: 1,
		},
		{
			name:      "duplicate field spelled differently",
			in:        `m a\b=1,a\\b=2 0`,
			want:      []Point{pt("m", `a\b`, 0, 2)},
			wantLines: 1,
		},
		{
			name:      "empty body",
			in:        "",
			wantLines: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewLineParser(LineOptions{Precision: tc.prec, Now: fixedNow})
			res := p.Parse(nil, []byte(tc.in))
			if err := res.Err(); err != nil {
				t.Fatalf("Parse(%q): unexpected error: %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, res.Points); diff != "" {
				t.Errorf("Parse(%q) points (-want +got):\n%s", tc.in, diff)
			}
			if res.Lines != tc.wantLines || res.StringFields != tc.wantStr {
				t.Errorf("Parse(%q): got %d lines, %d string fields; want %d, %d", tc.in, res.Lines, res.StringFields, tc.wantLines, tc.wantStr)
			}
		})
	}
}

func TestParseLineProtocolErrors(t *testing.T) {
	small := Limits{MaxLineBytes: 40, MaxFields: 2, MaxTags: 2, MaxNameBytes: 4, MaxTagValueBytes: 3}
	tests := []struct {
		name    string
		in      string
		prec    Precision
		limits  Limits
		wantErr string
		kind    error
	}{
		{"missing fields", "m", 0, Limits{}, "line 1, col 2: missing fields", ErrInvalid},
		{"missing fields after space", "m,t=a ", 0, Limits{}, "line 1, col 7: missing fields", ErrInvalid},
		{"escaped space is not a separator", `m,t=a\ f=1`, 0, Limits{}, "line 1, col 11: missing fields", ErrInvalid},
		{"missing measurement", ",t=a f=1", 0, Limits{}, "line 1, col 1: missing measurement", ErrInvalid},
		{"tag without equals sign", "m,t f=1", 0, Limits{}, `line 1, col 3: tag "t": missing "="`, ErrInvalid},
		{"tag without value", "m,t= f=1", 0, Limits{}, `line 1, col 5: tag "t": missing value`, ErrInvalid},
		{"empty tag key", "m,=v f=1", 0, Limits{}, "line 1, col 3: empty tag key", ErrInvalid},
		{"trailing comma in tags", "m,t=a, f=1", 0, Limits{}, `line 1, col 7: tag "": missing "="`, ErrInvalid},
		{"duplicate tag", "m,t=a,t=b f=1", 0, Limits{}, `line 1: duplicate tag "t"`, ErrInvalid},
		{"unescaped equals sign in tag value", "m,t=a=b f=1", 0, Limits{}, `line 1, col 6: tag "t": unescaped "=" in value`, ErrInvalid},
		{"field without equals sign", "m f", 0, Limits{}, `line 1, col 3: missing "=" after field key "f"`, ErrInvalid},
		{"field with comma in key", "m f,g=1", 0, Limits{}, `line 1, col 3: missing "=" after field key "f"`, ErrInvalid},
		{"empty field key", "m =1", 0, Limits{}, "line 1, col 3: empty field key", ErrInvalid},
		{"field without value", "m f=", 0, Limits{}, `line 1, col 5: field "f": missing value`, ErrInvalid},
		{"field without value before comma", "m f=,g=1", 0, Limits{}, `line 1, col 5: field "f": missing value`, ErrInvalid},
		{"invalid number", "m f=1,temp=1.2.3", 0, Limits{}, `line 1, col 12: field "temp": invalid number "1.2.3"`, ErrInvalid},
		{"number with junk", "m f=1x", 0, Limits{}, `line 1, col 5: field "f": invalid number "1x"`, ErrInvalid},
		{"exponent without digits", "m f=1e", 0, Limits{}, `line 1, col 5: field "f": invalid number "1e"`, ErrInvalid},
		{"plus sign", "m f=+1", 0, Limits{}, `line 1, col 5: field "f": invalid value "+1"`, ErrInvalid},
		{"NaN", "m f=NaN", 0, Limits{}, `line 1, col 5: field "f": invalid value "NaN"`, ErrInvalid},
		{"hex float", "m f=0x1p3", 0, Limits{}, `line 1, col 5: field "f": invalid number "0x1p3"`, ErrInvalid},
		{"float out of range", "m f=1e999", 0, Limits{}, `line 1, col 5: field "f": number "1e999" out of range`, ErrInvalid},
		{"unquoted word", "m f=abc", 0, Limits{}, `line 1, col 5: field "f": invalid value "abc"`, ErrInvalid},
		{"integer overflow", "m f=9223372036854775808i", 0, Limits{}, `line 1, col 5: field "f": invalid integer "9223372036854775808i"`, ErrInvalid},
		{"float with integer suffix", "m f=1.5i", 0, Limits{}, `line 1, col 5: field "f": invalid integer "1.5i"`, ErrInvalid},
		{"negative unsigned", "m f=-1u", 0, Limits{}, `line 1, col 5: field "f": invalid unsigned integer "-1u"`, ErrInvalid},
		{"unsigned overflow", "m f=18446744073709551616u", 0, Limits{}, `line 1, col 5: field "f": invalid unsigned integer "18446744073709551616u"`, ErrInvalid},
		{"unterminated string", `m f="abc`, 0, Limits{}, `line 1, col 5: field "f": unterminated string`, ErrInvalid},
		{"escaped closing quote", `m f="abc\"`, 0, Limits{}, `line 1, col 5: field "f": unterminated string`, ErrInvalid},
		{"junk after string", `m f="a"b`, 0, Limits{}, `line 1, col 8: field "f": unexpected "b" after string`, ErrInvalid},
		{"space after comma", "m f=1, g=2", 0, Limits{}, `line 1, col 7: missing field after ","`, ErrInvalid},
		{"trailing comma", "m f=1,", 0, Limits{}, `line 1, col 7: missing field after ","`, ErrInvalid},
		{"invalid timestamp", "m f=1 abc", 0, Limits{}, `line 1, col 7: invalid timestamp "abc"`, ErrInvalid},
		{"float timestamp", "m f=1 1.5", 0, Limits{}, `line 1, col 7: invalid timestamp "1.5"`, ErrInvalid},
		{"timestamp overflow", "m f=1 9223372036854775808", 0, Limits{}, `line 1, col 7: invalid timestamp "9223372036854775808"`, ErrInvalid},
		{"timestamp out of range for precision", "m f=1 9223372036854775807", Second, Limits{}, `line 1, col 7: timestamp 9223372036854775807 out of range for precision s`, ErrInvalid},
		{"junk after timestamp", "m f=1 1 2", 0, Limits{}, `line 1, col 9: unexpected "2" after timestamp`, ErrInvalid},
		{"invalid UTF-8 in tags", "m,t=\xff f=1", 0, Limits{}, "line 1: measurement or tags: invalid UTF-8", ErrInvalid},
		{"invalid UTF-8 in field key", "m \xff=1", 0, Limits{}, `line 1, col 3: field key "\xff": invalid UTF-8`, ErrInvalid},
		{"limit MaxLineBytes", "m f=1 " + strings.Repeat("1", 40), 0, small, "line 1: line of 46 bytes exceeds limit MaxLineBytes=40", ErrLimit},
		{"limit MaxFields", "m a=1,b=2,c=3", 0, small, "line 1, col 11: more than 2 fields: limit MaxFields=2", ErrLimit},
		{"limit MaxTags", "m,a=1,b=2,c=3 f=1", 0, small, "line 1, col 2: 3 tags exceed limit MaxTags=2", ErrLimit},
		{"limit MaxNameBytes measurement", "mmmmm f=1", 0, small, `line 1, col 1: measurement "mmmmm": 5 bytes exceed limit MaxNameBytes=4`, ErrLimit},
		{"limit MaxNameBytes tag key", "m,kkkkk=v f=1", 0, small, `line 1, col 3: tag key "kkkkk": 5 bytes exceed limit MaxNameBytes=4`, ErrLimit},
		{"limit MaxNameBytes field key", "m fffff=1", 0, small, `line 1, col 3: field key "fffff": 5 bytes exceed limit MaxNameBytes=4`, ErrLimit},
		{"limit MaxNameBytes counts unescaped bytes", `m f\ \ \ =1`, 0, small, "", nil},
		{"limit MaxTagValueBytes", "m,k=vvvv f=1", 0, small, `line 1, col 5: tag "k": value of 4 bytes exceeds limit MaxTagValueBytes=3`, ErrLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewLineParser(LineOptions{Precision: tc.prec, Now: fixedNow, Limits: tc.limits})
			res := p.Parse(nil, []byte(tc.in))
			err := res.Err()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(%q): unexpected error: %v", tc.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q): got points %v, want error %q", tc.in, res.Points, tc.wantErr)
			}
			if got := err.Error(); got != tc.wantErr {
				t.Errorf("Parse(%q): got error %q, want %q", tc.in, got, tc.wantErr)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("Parse(%q): error %v is not %v", tc.in, err, tc.kind)
			}
			if len(res.Points) != 0 || res.Lines != 0 || res.Rejected != 1 {
				t.Errorf("Parse(%q): got %d points, %d lines, %d rejected; want 0, 0, 1", tc.in, len(res.Points), res.Lines, res.Rejected)
			}
		})
	}
}

func TestParsePartial(t *testing.T) {
	body := "m f=1 0\nm f=oops 0\n# comment\nm,t f=2 0\nm f=3 0\n"
	p := NewLineParser(LineOptions{Now: fixedNow})
	dst := make([]Point, 0, 8)
	dst = append(dst, pt("earlier", "x", 0, 9))
	res := p.Parse(dst, []byte(body))
	want := []Point{pt("earlier", "x", 0, 9), pt("m", "f", 0, 1), pt("m", "f", 0, 3)}
	if diff := cmp.Diff(want, res.Points); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	if res.Lines != 2 || res.Rejected != 2 {
		t.Errorf("got %d lines, %d rejected; want 2, 2", res.Lines, res.Rejected)
	}
	var lines []int
	for _, e := range res.Errors {
		lines = append(lines, e.Line)
	}
	if diff := cmp.Diff([]int{2, 4}, lines); diff != "" {
		t.Errorf("error lines (-want +got):\n%s", diff)
	}
	wantMsg := `line 2, col 5: field "f": invalid value "oops" (and 1 more rejected lines)`
	if got := res.Err().Error(); got != wantMsg {
		t.Errorf("got error %q, want %q", got, wantMsg)
	}
	if !errors.Is(res.Err(), ErrInvalid) || errors.Is(res.Err(), ErrLimit) {
		t.Errorf("error %v: want kind ErrInvalid only", res.Err())
	}
	var le *LineError
	if !errors.As(res.Err(), &le) || le.Line != 2 {
		t.Errorf("errors.As(%v, *LineError): got %+v, want line 2", res.Err(), le)
	}
}

func TestParseMaxErrors(t *testing.T) {
	body := strings.Repeat("bad\n", 10) + "m f=1 0\n"
	tests := []struct {
		maxErrors, wantKept int
	}{{0, 10}, {3, 3}, {-1, 10}}
	for _, tc := range tests {
		p := NewLineParser(LineOptions{MaxErrors: tc.maxErrors})
		res := p.Parse(nil, []byte(body))
		if len(res.Errors) != tc.wantKept || res.Rejected != 10 || len(res.Points) != 1 {
			t.Errorf("MaxErrors=%d: got %d errors kept, %d rejected, %d points; want %d, 10, 1", tc.maxErrors, len(res.Errors), res.Rejected, len(res.Points), tc.wantKept)
		}
	}
}

func TestParseNowCalledOncePerBody(t *testing.T) {
	calls := 0
	now := func() time.Time { calls++; return testNow.Add(time.Duration(calls) * time.Second) }
	p := NewLineParser(LineOptions{Now: now})
	res := p.Parse(nil, []byte("m f=1\nm f=2\nm f=3 0\n"))
	if calls != 1 || res.Points[0].Time != res.Points[1].Time || res.Points[0].Time != testNowMs+1000 {
		t.Errorf("first body: %d calls of Now, times %d %d; want 1 call, both %d", calls, res.Points[0].Time, res.Points[1].Time, testNowMs+1000)
	}
	p.Parse(nil, []byte("m f=1 0\n"))
	if calls != 1 {
		t.Errorf("body with timestamps: got %d calls of Now, want none more", calls)
	}
	res = p.Parse(nil, []byte("m f=1\n"))
	if calls != 2 || res.Points[0].Time != testNowMs+2000 {
		t.Errorf("second body: %d calls, time %d; want 2 calls, %d", calls, res.Points[0].Time, testNowMs+2000)
	}
}

// TestParseCaches checks that the series and field-key caches give the same
// results as a fresh parse, also while they are being emptied, and that
// points share tag sets.
func TestParseCaches(t *testing.T) {
	lines := []string{
		"m,t=a a=1,b=2 0",
		"m,t=b b=3,a=4 0",
		"m,t=a b=5,a=6 0",
		"m,t=a a=7,a=8 0",
		"m,t=a a=9,b=10,c=11 0",
		"m,t=c a=12 0",
		`m,t=a a=13,b="s",b=14 0`,
		"m,t=a a=15,b=16 0",
		"n,t=a a=17,b=18 0",
		"m,t=a a=19,a=bad 0", // fails after updating the field-key cache
		"m,t=a a=20,a=21 0",
	}
	body := []byte(strings.Join(lines, "\n"))
	want := []Point{
		pt("m", "a", 0, 1, "t", "a"), pt("m", "b", 0, 2, "t", "a"),
		pt("m", "b", 0, 3, "t", "b"), pt("m", "a", 0, 4, "t", "b"),
		pt("m", "b", 0, 5, "t", "a"), pt("m", "a", 0, 6, "t", "a"),
		pt("m", "a", 0, 8, "t", "a"),
		pt("m", "a", 0, 9, "t", "a"), pt("m", "b", 0, 10, "t", "a"), pt("m", "c", 0, 11, "t", "a"),
		pt("m", "a", 0, 12, "t", "c"),
		pt("m", "a", 0, 13, "t", "a"), pt("m", "b", 0, 14, "t", "a"),
		pt("m", "a", 0, 15, "t", "a"), pt("m", "b", 0, 16, "t", "a"),
		pt("n", "a", 0, 17, "t", "a"), pt("n", "b", 0, 18, "t", "a"),
		pt("m", "a", 0, 21, "t", "a"),
	}
	for _, cacheSize := range []int{0, 1, 2} {
		p := NewLineParser(LineOptions{MaxCachedSeries: cacheSize})
		for round := range 3 {
			res := p.Parse(nil, body)
			if res.Rejected != 1 {
				t.Fatalf("cache %d round %d: got %d rejected lines (%v), want 1", cacheSize, round, res.Rejected, res.Err())
			}
			if diff := cmp.Diff(want, res.Points); diff != "" {
				t.Errorf("cache %d round %d: points (-want +got):\n%s", cacheSize, round, diff)
			}
		}
	}
	res := NewLineParser(LineOptions{}).Parse(nil, []byte("m,t=a,u=b f=1,g=2 0\nm,t=a,u=b f=3 0\n"))
	if &res.Points[0].Series.Tags[0] != &res.Points[1].Series.Tags[0] || &res.Points[0].Series.Tags[0] != &res.Points[2].Series.Tags[0] {
		t.Errorf("points of one series part do not share their Tags")
	}
}

func TestParseManyFields(t *testing.T) {
	// More than 32 fields switch duplicate detection to a map.
	var b strings.Builder
	b.WriteString("m ")
	var want []Point
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "f%02d=1", i)
		want = append(want, pt("m", fmt.Sprintf("f%02d", i), 0, 1))
	}
	b.WriteString(",f00=2,f25=3,f38=\"s\" 0")
	want[0].Value = 2
	want[25].Value = 3
	want = append(want[:38], want[39:]...) // fg became a string
	res := NewLineParser(LineOptions{}).Parse(nil, []byte(b.String()))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.Points); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
}

func TestParsePrecision(t *testing.T) {
	tests := []struct {
		in      string
		want    Precision
		wantErr bool
	}{
		{"", Nanosecond, false}, {"ns", Nanosecond, false}, {"n", Nanosecond, false},
		{"us", Microsecond, false}, {"u", Microsecond, false}, {"µs", Microsecond, false},
		{"ms", Millisecond, false}, {"s", Second, false}, {"m", Minute, false}, {"h", Hour, false},
		{"d", 0, true}, {"MS", 0, true},
	}
	for _, tc := range tests {
		got, err := ParsePrecision(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParsePrecision(%q) = %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePrecision(%q): error %v is not ErrInvalid", tc.in, err)
		}
	}
}

// TestParseFloatsMatchStrconv checks the fast decimal path against
// strconv.ParseFloat on random decimals of up to 20 digits.
func TestParseFloatsMatchStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var b strings.Builder
	var want []float64
	for i := range 20000 {
		digits := strconv.FormatUint(r.Uint64()>>r.IntN(64), 10)
		if d := r.IntN(len(digits) + 2); d <= len(digits) {
			digits = digits[:d] + "." + digits[d:]
		}
		if r.IntN(2) == 0 {
			digits = "-" + digits
		}
		if digits == "." || digits == "-." {
			digits += "0"
		}
		f, err := strconv.ParseFloat(digits, 64)
		if err != nil {
			t.Fatalf("strconv.ParseFloat(%q): %v", digits, err)
		}
		want = append(want, f)
		fmt.Fprintf(&b, "m f%d=%s 0\n", i, digits)
	}
	res := NewLineParser(LineOptions{}).Parse(nil, []byte(b.String()))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Points {
		if math.Float64bits(p.Value) != math.Float64bits(want[i]) {
			t.Errorf("line %d: got %v (%b), want %v", i+1, p.Value, math.Float64bits(p.Value), want[i])
		}
	}
}
