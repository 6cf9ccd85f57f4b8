package telemetry

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendPoints(t *testing.T) {
	tests := []struct {
		name string
		pts  []Point
		prec Precision
		want string
	}{
		{
			name: "one point",
			pts:  []Point{pt("m", "f", 1700000000123, 1.5, "device", "d1")},
			want: "m,device=d1 f=1.5 1700000000123000000\n",
		},
		{
			name: "consecutive fields of one series part and time share a line",
			pts: []Point{
				pt("m", "a", 5, 1, "t", "x"), pt("m", "b", 5, -2.25, "t", "x"),
				pt("m", "a", 6, 3, "t", "x"), pt("m", "a", 6, 4, "t", "x"), pt("m", "b", 6, 5, "t", "y"),
			},
			prec: Millisecond,
			want: "m,t=x a=1,b=-2.25 5\nm,t=x a=3 6\nm,t=x a=4 6\nm,t=y b=5 6\n",
		},
		{
			name: "escaping",
			pts:  []Point{pt(`my meas,=\`, `f 1,=\`, 0, 1e21, `k 1,=\`, `v 1,=\"`)},
			prec: Second,
			want: `my\ meas\,=\\,k\ 1\,\=\\=v\ 1\,\=\\" f\ 1\,\=\\=1e+21 0` + "\n",
		},
		{
			name: "unsorted tags are written sorted",
			pts:  []Point{{Series: Series{Measurement: "m", Tags: Tags{{"b", "2"}, {"a", "1"}}, Field: "f"}, Time: 1999}},
			prec: Second,
			want: "m,a=1,b=2 f=0 1\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendPoints([]byte("x"), tc.pts, tc.prec)
			if err != nil {
				t.Fatalf("AppendPoints: %v", err)
			}
			if string(got) != "x"+tc.want {
				t.Errorf("AppendPoints(%v) = %q, want %q", tc.pts, got[1:], tc.want)
			}
		})
	}
}

func TestAppendPointsErrors(t *testing.T) {
	tests := []struct {
		name    string
		p       Point
		prec    Precision
		wantErr string
	}{
		{"empty measurement", pt("", "f", 0, 1), 0, "encode point 0: empty measurement"},
		{"comment measurement", pt("#m", "f", 0, 1), 0, `encode point 0: measurement "#m" starts with "#"`},
		{"newline in tag value", pt("m", "f", 0, 1, "t", "a\nb"), 0, `encode point 0: tag "t" value "a\nb": contains a newline`},
		{"empty tag key", pt("m", "f", 0, 1, "", "v"), 0, "encode point 0: empty tag key"},
		{"duplicate tag", Point{Series: Series{Measurement: "m", Tags: Tags{{"t", "1"}, {"t", "2"}}, Field: "f"}}, 0, `encode point 0: duplicate tag "t"`},
		{"empty field", pt("m", "", 0, 1), 0, "encode point 0: empty field key"},
		{"NaN", pt("m", "f", 0, math.NaN()), 0, "encode point 0 (m f): value NaN"},
		{"Inf", pt("m", "f", 0, math.Inf(-1)), 0, "encode point 0 (m f): value -Inf"},
		{"time overflow", pt("m", "f", math.MaxInt64/100, 1), Nanosecond, "encode point 0 (m f): time 92233720368547758 ms out of range for precision ns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendPoint([]byte("keep"), tc.p, tc.prec)
			if err == nil {
				t.Fatalf("AppendPoint(%v) = %q, want error", tc.p, got)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Errorf("AppendPoint(%v): got error %q, want %q wrapping ErrInvalid", tc.p, err, tc.wantErr)
			}
			if string(got) != "keep" {
				t.Errorf("AppendPoint(%v): dst changed to %q on error", tc.p, got)
			}
		})
	}
}

// randName returns a random non-empty name of bytes that line protocol can
// carry, rich in special characters.
func randName(r *rand.Rand) string {
	alphabet := []string{"a", "b", "z", "0", "_", "-", ".", "é", "🍭", " ", ",", "=", `"`, `\`, "#", "\t", "'", "\r"}
	n := 1 + r.IntN(6)
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randValue(r *rand.Rand) float64 {
	switch r.IntN(6) {
	case 0:
		return float64(r.Int64N(1<<62) - 1<<61)
	case 1:
		return math.Float64frombits(r.Uint64()&^(0x7ff<<52) | uint64(r.IntN(0x7fe))<<52) // finite
	case 2:
		return 0
	case 3:
		return -math.MaxFloat64
	case 4:
		return math.SmallestNonzeroFloat64
	default:
		return math.Round(r.NormFloat64()*1e4) / 100
	}
}

// randPoints returns n random points; consecutive points often share
// measurement, tags and time so that the encoder merges them into lines.
func randPoints(r *rand.Rand, n int) []Point {
	var pts []Point
	for len(pts) < n {
		m := randName(r)
		if m[0] == '#' {
			m = "m" + m
		}
		var tags Tags
		seen := map[string]bool{}
		for range r.IntN(4) {
			k := randName(r)
			if !seen[k] {
				seen[k] = true
				tags = append(tags, Tag{Key: k, Value: randName(r)})
			}
		}
		tags.Sort()
		if len(tags) == 0 {
			tags = nil
		}
		ms := r.Int64N(1<<43) - 1<<42
		fields := map[string]bool{}
		for range 1 + r.IntN(4) {
			f := randName(r)
			if fields[f] {
				continue
			}
			fields[f] = true
			pts = append(pts, Point{Series: Series{Measurement: m, Tags: tags, Field: f}, Time: ms, Value: randValue(r)})
		}
	}
	return pts
}

func TestLineProtocolRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, prec := range []Precision{Nanosecond, Microsecond, Millisecond} {
		pts := randPoints(r, 2000)
		body, err := AppendPoints(nil, pts, prec)
		if err != nil {
			t.Fatalf("AppendPoints: %v", err)
		}
		res := NewLineParser(LineOptions{Precision: prec, Limits: Limits{MaxFields: -1}}).Parse(nil, body)
		if err := res.Err(); err != nil {
			t.Fatalf("precision %s: Parse(AppendPoints(pts)): %v", prec, err)
		}
		if diff := cmp.Diff(pts, res.Points); diff != "" {
			t.Errorf("precision %s: round trip (-want +got):\n%s", prec, diff)
		}
	}
}

func TestSeriesKeyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	keys := map[string]Series{}
	for _, p := range randPoints(r, 3000) {
		s := p.Series
		key := s.Key()
		got, err := ParseSeriesKey(key)
		if err != nil {
			t.Fatalf("ParseSeriesKey(%q): %v", key, err)
		}
		if diff := cmp.Diff(s, got); diff != "" {
			t.Errorf("ParseSeriesKey(%q) (-want +got):\n%s", key, diff)
		}
		if other, ok := keys[key]; ok && !cmp.Equal(other, s) {
			t.Errorf("series %v and %v share key %q", other, s, key)
		}
		keys[key] = s
	}
}

func TestSeriesKey(t *testing.T) {
	tests := []struct {
		s    Series
		want string
	}{
		{NewSeries("weather", Tags{{"site", "n"}, {"device", "d1"}}, "temp"), "weather,device=d1,site=n temp"},
		{NewSeries("m", nil, "f"), "m f"},
		{NewSeries("a b,c=d", Tags{{"k=1", "v 2,"}}, `f\`), `a\ b\,c=d,k\=1=v\ 2\, f\\`},
		// Without escaped backslashes these two would share `m,t=a\,u=b f`.
		{NewSeries("m", Tags{{"t", `a\`}, {"u", "b"}}, "f"), `m,t=a\\,u=b f`},
		{NewSeries("m", Tags{{"t", `a,u=b`}}, "f"), `m,t=a\,u\=b f`},
	}
	for _, tc := range tests {
		if got := tc.s.Key(); got != tc.want {
			t.Errorf("%#v.Key() = %q, want %q", tc.s, got, tc.want)
		}
	}
	for _, bad := range []string{"m", ",t=a f", "m,t f", "m f g", "m ", "m,t=a,t=b f"} {
		if s, err := ParseSeriesKey(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSeriesKey(%q) = %v, %v; want ErrInvalid", bad, s, err)
		}
	}
}
