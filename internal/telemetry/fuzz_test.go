package telemetry

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var lineProtocolSeeds = []string{
	"weather,device=dev-0042,site=north,region=eu temp=21.37,hum=45.2,press=1013.2,wind=3.4,dir=182i,rain=0,uv=3.1,co2=412i,pm25=8.3,batt=3.71 1700000000000000000\n",
	"m f=1\nm f=2 0\r\n# comment\n\n",
	`my\ meas\,ure,k\ 1\,x\=y=v\ 1\,2\=3 f\ 1\,a\=b=1 0`,
	`m\x\\y,t=a\b,u=c\\ f\\g=1,h\=\\=2 0`,
	`m s="a \"q\" \\ b, c=d",f=1,e="" 0`,
	"m a=1e3,b=-1.5E-3,c=.5,d=1.,e=-0,f=1E+2,g=-42i,h=18446744073709551615u,i=t,j=FALSE -1",
	"m a=1,b=2,a=3 0\nm a=1,a=\"x\" 0\nm,t=a,t=b f=1\nm f=1.2.3\n",
	"m f=1 9223372036854775807\nm f=1 -9223372036854775808\n",
}

func FuzzParseLineProtocol(f *testing.F) {
	for i, s := range lineProtocolSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, precision uint8) {
		opts := LineOptions{Precision: Precision(precision % 6), Now: fixedNow, Limits: Limits{MaxLineBytes: 60}, MaxErrors: -1}
		p := NewLineParser(opts)
		res := p.Parse(nil, body)
		checkParseResult(t, body, res)

		// The same parser, with warm caches, gives the same result.
		again := p.Parse(nil, body)
		if diff := cmp.Diff(res, again, cmpopts.IgnoreFields(ParseResult{}, "Errors")); diff != "" {
			t.Fatalf("second Parse(%q) differs (-first +second):\n%s", body, diff)
		}

		// Streaming gives the same result.
		d := NewDecoder(bytes.NewReader(body), opts)
		var streamed []Point
		for {
			r, err := d.Next(streamed, 3)
			streamed = r.Points
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Decoder(%q): %v", body, err)
			}
		}
		if diff := cmp.Diff(res.Points, streamed); diff != "" {
			t.Fatalf("Decoder(%q) differs from Parse (-parse +decoder):\n%s", body, diff)
		}

		// Whatever parses re-encodes and re-parses to the same points.
		enc, err := AppendPoints(nil, res.Points, Millisecond)
		if err != nil {
			t.Fatalf("AppendPoints(Parse(%q)): %v", body, err)
		}
		res2 := NewLineParser(LineOptions{Precision: Millisecond, Limits: unlimited()}).Parse(nil, enc)
		if err := res2.Err(); err != nil {
			t.Fatalf("Parse(AppendPoints(Parse(%q))) = Parse(%q): %v", body, enc, err)
		}
		if diff := cmp.Diff(res.Points, res2.Points); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", body, enc, diff)
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"measurement":"weather","tags":{"site":"n","device":"d1"},"fields":{"temp":21.5,"on":true,"note":"hi"},"time":1700000000123}`,
		`[{"measurement":"m","fields":{"b":1,"a":2}},{"fields":{"x":-1.5e3},"measurement":"n","tags":null,"time":null}]`,
		`[{"measurement":"m","fields":{"f":1},"time":"2023-11-14T22:13:20.123456+01:00"},{"measurement":"m","fields":{"f":4},"time":1700000000.1234,"precision":"s"}]`,
		`[{"measurement":"a b,c\\","tags":{"k=1":"v \"2\"\\"},"fields":{"big":9007199254740993,"a":1,"a":"s"}}]`,
		`[1,{"measurement":"#m"},{"measurement":"m","fields":{"f":null}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := ParseJSON(nil, body, JSONOptions{Now: fixedNow, MaxErrors: -1})
		if err != nil {
			if !errors.Is(err, ErrInvalid) || len(res.Points) != 0 {
				t.Fatalf("ParseJSON(%q): body error %v with %d points", body, err, len(res.Points))
			}
			return
		}
		if res.Rejected != len(res.Errors) {
			t.Fatalf("ParseJSON(%q): %d rejected, %d errors", body, res.Rejected, len(res.Errors))
		}
		for _, e := range res.Errors {
			if !errors.Is(e, ErrInvalid) && !errors.Is(e, ErrLimit) {
				t.Fatalf("ParseJSON(%q): error %v of no kind", body, e)
			}
		}
		checkPoints(t, body, res.Points)
		enc, err := AppendJSON(nil, res.Points)
		if err != nil {
			t.Fatalf("AppendJSON(ParseJSON(%q)): %v", body, err)
		}
		res2, err := ParseJSON(nil, enc, JSONOptions{Limits: unlimited()})
		if err != nil || res2.Err() != nil {
			t.Fatalf("ParseJSON(AppendJSON(ParseJSON(%q))) = ParseJSON(%q): %v, %v", body, enc, err, res2.Err())
		}
		if diff := cmp.Diff(res.Points, res2.Points); diff != "" {
			t.Fatalf("JSON round trip of %q via %q (-first +second):\n%s", body, enc, diff)
		}
		// JSON points also survive line protocol.
		lp, err := AppendPoints(nil, res.Points, Millisecond)
		if err != nil {
			t.Fatalf("AppendPoints(ParseJSON(%q)): %v", body, err)
		}
		res3 := NewLineParser(LineOptions{Precision: Millisecond, Limits: unlimited()}).Parse(nil, lp)
		if err := res3.Err(); err != nil {
			t.Fatalf("Parse(AppendPoints(ParseJSON(%q))) = Parse(%q): %v", body, lp, err)
		}
		if diff := cmp.Diff(res.Points, res3.Points); diff != "" {
			t.Fatalf("JSON to line protocol of %q via %q (-json +lp):\n%s", body, lp, diff)
		}
	})
}

func unlimited() Limits {
	return Limits{MaxLineBytes: -1, MaxFields: -1, MaxTags: -1, MaxNameBytes: -1, MaxTagValueBytes: -1}
}

// checkParseResult checks the invariants of a line-protocol result.
func checkParseResult(t *testing.T, body []byte, res ParseResult) {
	t.Helper()
	nlines := bytes.Count(body, []byte("\n")) + 1
	if res.Rejected != len(res.Errors) {
		t.Fatalf("Parse(%q): %d rejected, %d errors", body, res.Rejected, len(res.Errors))
	}
	if res.Lines+res.Rejected > nlines {
		t.Fatalf("Parse(%q): %d valid + %d rejected lines of %d", body, res.Lines, res.Rejected, nlines)
	}
	prev := 0
	for _, e := range res.Errors {
		if e.Line <= prev || e.Line > nlines || e.Column < 0 {
			t.Fatalf("Parse(%q): error %v: bad position after line %d of %d", body, e, prev, nlines)
		}
		if !errors.Is(e, ErrInvalid) && !errors.Is(e, ErrLimit) {
			t.Fatalf("Parse(%q): error %v of no kind", body, e)
		}
		prev = e.Line
	}
	checkPoints(t, body, res.Points)
}

func checkPoints(t *testing.T, body []byte, pts []Point) {
	t.Helper()
	for _, p := range pts {
		s := p.Series
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			t.Fatalf("input %q: point %v has a non-finite value", body, p)
		}
		names := []string{s.Measurement, s.Field}
		for i, tag := range s.Tags {
			names = append(names, tag.Key, tag.Value)
			if i > 0 && s.Tags[i-1].Key >= tag.Key {
				t.Fatalf("input %q: point %v: tags not sorted and unique", body, p)
			}
		}
		for _, n := range names {
			if n == "" || !utf8.ValidString(n) || bytes.IndexByte([]byte(n), '\n') >= 0 {
				t.Fatalf("input %q: point %v: bad name %q", body, p, n)
			}
		}
		if got, err := ParseSeriesKey(s.Key()); err != nil || !cmp.Equal(got, s) {
			t.Fatalf("input %q: ParseSeriesKey(%q) = %v, %v; want %v", body, s.Key(), got, err, s)
		}
	}
}
