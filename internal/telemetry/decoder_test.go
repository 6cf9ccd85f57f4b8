package telemetry

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestDecoderMatchesParse checks that streaming gives the same points and
// errors as parsing the whole body, whatever the batch size and however the
// reader splits the input.
func TestDecoderMatchesParse(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	body, err := AppendPoints(nil, randPoints(r, 300), Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	body = append(body, "bad line\n# comment\r\n\nm,t=a f=1\r\nm f=\"unterminated\nm f=2 0"...) // last line without "\n"
	opts := LineOptions{Now: fixedNow, Limits: Limits{MaxLineBytes: 200}}
	want := NewLineParser(opts).Parse(nil, body)
	if want.Rejected == 0 {
		t.Fatal("test body has no invalid line")
	}
	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader(body) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) },
	}
	for name, newReader := range readers {
		for _, batch := range []int{1, 7, 1 << 20} {
			d := NewDecoder(newReader(), opts)
			var got ParseResult
			for {
				res, err := d.Next(got.Points, batch)
				got.Points = res.Points
				got.Lines += res.Lines
				got.StringFields += res.StringFields
				got.Rejected += res.Rejected
				got.Errors = append(got.Errors, res.Errors...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s batch %d: Next: %v", name, batch, err)
				}
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(ParseResult{}, "Errors")); diff != "" {
				t.Errorf("%s batch %d: Decoder result differs from Parse (-want +got):\n%s", name, batch, diff)
			}
			if diff := cmp.Diff(errorStrings(want.Errors), errorStrings(got.Errors)); diff != "" {
				t.Errorf("%s batch %d: Decoder errors differ from Parse (-want +got):\n%s", name, batch, diff)
			}
		}
	}
}

func TestDecoderLongLines(t *testing.T) {
	long := "m f=1 " + strings.Repeat("1", 5000)
	body := "m f=1 0\n" + long + "\r\nm f=2 0\n" + long + "\nm f=3 0\n" + long
	for _, lim := range []int{100, 5005, -1} {
		opts := LineOptions{Limits: Limits{MaxLineBytes: lim}}
		want := NewLineParser(opts).Parse(nil, []byte(body))
		d := NewDecoder(strings.NewReader(body), opts)
		got, err := d.Next(nil, 1<<20)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("MaxLineBytes=%d: Next: got error %v, want io.EOF", lim, err)
		}
		if diff := cmp.Diff(want.Points, got.Points); diff != "" {
			t.Errorf("MaxLineBytes=%d: points (-want +got):\n%s", lim, diff)
		}
		if got.Rejected != want.Rejected || got.Lines != want.Lines {
			t.Errorf("MaxLineBytes=%d: got %d lines, %d rejected; want %d, %d", lim, got.Lines, got.Rejected, want.Lines, want.Rejected)
		}
		if diff := cmp.Diff(errorStrings(want.Errors), errorStrings(got.Errors)); diff != "" {
			t.Errorf("MaxLineBytes=%d: errors (-want +got):\n%s", lim, diff)
		}
	}
}

func TestDecoderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("m f=1 0\nm f=2 0\nm f="), iotest.ErrReader(boom))
	d := NewDecoder(r, LineOptions{})
	res, err := d.Next(nil, 100)
	if !errors.Is(err, boom) {
		t.Fatalf("Next: got error %v, want %v", err, boom)
	}
	if want := "read line protocol after line 3: boom"; err.Error() != want {
		t.Errorf("Next: got error %q, want %q", err, want)
	}
	if len(res.Points) != 2 {
		t.Errorf("Next: got %d points before the read error, want 2", len(res.Points))
	}
	if _, err2 := d.Next(nil, 100); !errors.Is(err2, boom) {
		t.Errorf("Next after error: got %v, want the same error", err2)
	}
}

func errorStrings(es LineErrors) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Error())
	}
	return s
}
