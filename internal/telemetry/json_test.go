package telemetry

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        []Point
		wantObjects int
		wantStr     int
	}{
		{
			name: "single object",
			in:   `{"measurement":"weather","tags":{"site":"n","device":"d1"},"fields":{"temp":21.5,"on":true,"off":false,"note":"hi"},"time":1700000000123}`,
			want: []Point{
				pt("weather", "temp", 1700000000123, 21.5, "device", "d1", "site", "n"),
				pt("weather", "on", 1700000000123, 1, "device", "d1", "site", "n"),
				pt("weather", "off", 1700000000123, 0, "device", "d1", "site", "n"),
			},
			wantObjects: 1,
			wantStr:     1,
		},
		{
			name:        "array, fields in document order",
			in:          ` [ {"measurement":"m","fields":{"b":1,"a":2}} , {"fields":{"x":-1.5e3},"measurement":"n","tags":null,"time":null} ] `,
			want:        []Point{pt("m", "b", testNowMs, 1), pt("m", "a", testNowMs, 2), pt("n", "x", testNowMs, -1500)},
			wantObjects: 2,
		},
		{
			name:        "empty array",
			in:          `[]`,
			wantObjects: 0,
		},
		{
			name:        "RFC 3339 time",
			in:          `{"measurement":"m","fields":{"f":1},"time":"2023-11-14T22:13:20.123456+01:00"}`,
			want:        []Point{pt("m", "f", 1699996400123, 1)},
			wantObjects: 1,
		},
		{
			name: "precisions",
			in: `[{"measurement":"m","fields":{"f":1},"time":1700000000123456789,"precision":"ns"},
				{"measurement":"m","fields":{"f":2},"time":1700000000123456,"precision":"us"},
				{"measurement":"m","fields":{"f":3},"time":1700000000,"precision":"s"},
				{"measurement":"m","fields":{"f":4},"time":1700000000.1234,"precision":"s"},
				{"measurement":"m","fields":{"f":5},"time":-1,"precision":"ns"}]`,
			want: []Point{
				pt("m", "f", 1700000000123, 1), pt("m", "f", 1700000000123, 2), pt("m", "f", 1700000000000, 3),
				pt("m", "f", 1700000000123, 4), pt("m", "f", -1, 5),
			},
			wantObjects: 5,
		},
		{
			name:        "duplicate field: last wins",
			in:          `{"measurement":"m","fields":{"a":1,"b":2,"a":3}}`,
			want:        []Point{pt("m", "a", testNowMs, 3), pt("m", "b", testNowMs, 2)},
			wantObjects: 1,
		},
		{
			name:        "big integers lose precision above 2^53",
			in:          `{"measurement":"a b,c","tags":{"k=1":"v \"2\"\\"},"fields":{"big":9007199254740993}}`,
			want:        []Point{pt("a b,c", "big", testNowMs, 9007199254740992, "k=1", `v "2"\`)},
			wantObjects: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ParseJSON(nil, []byte(tc.in), JSONOptions{Now: fixedNow})
			if err != nil || res.Err() != nil {
				t.Fatalf("ParseJSON(%s): %v, %v", tc.in, err, res.Err())
			}
			if diff := cmp.Diff(tc.want, res.Points); diff != "" {
				t.Errorf("ParseJSON(%s) points (-want +got):\n%s", tc.in, diff)
			}
			if res.Objects != tc.wantObjects || res.StringFields != tc.wantStr {
				t.Errorf("ParseJSON(%s): got %d objects, %d string fields; want %d, %d", tc.in, res.Objects, res.StringFields, tc.wantObjects, tc.wantStr)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	small := Limits{MaxFields: 2, MaxTags: 1, MaxNameBytes: 4, MaxTagValueBytes: 3}
	ok := `{"measurement":"m","fields":{"f":1}}`
	tests := []struct {
		name    string
		obj     string
		limits  Limits
		wantErr string
		kind    error
	}{
		{"not an object", `[1]`, Limits{}, "point[1]: must be an object, not an array", ErrInvalid},
		{"missing measurement", `{"fields":{"f":1}}`, Limits{}, "point[1]: missing measurement", ErrInvalid},
		{"empty measurement", `{"measurement":"","fields":{"f":1}}`, Limits{}, "point[1]: empty measurement", ErrInvalid},
		{"measurement not a string", `{"measurement":1,"fields":{"f":1}}`, Limits{}, "point[1]: measurement: must be a string, not a number", ErrInvalid},
		{"comment measurement", `{"measurement":"#m","fields":{"f":1}}`, Limits{}, `point[1]: measurement "#m": must not start with "#"`, ErrInvalid},
		{"newline in measurement", `{"measurement":"a\nb","fields":{"f":1}}`, Limits{}, `point[1]: measurement "a\nb": contains a newline`, ErrInvalid},
		{"missing fields", `{"measurement":"m"}`, Limits{}, "point[1]: missing fields", ErrInvalid},
		{"empty fields", `{"measurement":"m","fields":{}}`, Limits{}, "point[1]: missing fields", ErrInvalid},
		{"fields not an object", `{"measurement":"m","fields":[1]}`, Limits{}, "point[1]: fields: must be an object, not an array", ErrInvalid},
		{"field null", `{"measurement":"m","fields":{"temp":null}}`, Limits{}, `point[1]: field "temp": must be a number, boolean or string, not null`, ErrInvalid},
		{"field object", `{"measurement":"m","fields":{"temp":{"v":1}}}`, Limits{}, `point[1]: field "temp": must be a number, boolean or string, not an object`, ErrInvalid},
		{"field out of range", `{"measurement":"m","fields":{"temp":1e999}}`, Limits{}, `point[1]: field "temp": number 1e999 out of range`, ErrInvalid},
		{"empty field key", `{"measurement":"m","fields":{"":1}}`, Limits{}, "point[1]: empty field key", ErrInvalid},
		{"tag not a string", `{"measurement":"m","tags":{"device":7},"fields":{"f":1}}`, Limits{}, `point[1]: tag "device": must be a string, not a number`, ErrInvalid},
		{"tags not an object", `{"measurement":"m","tags":"x","fields":{"f":1}}`, Limits{}, "point[1]: tags: must be an object, not a string", ErrInvalid},
		{"empty tag value", `{"measurement":"m","tags":{"device":""},"fields":{"f":1}}`, Limits{}, `point[1]: empty tag "device" value`, ErrInvalid},
		{"duplicate tag", `{"measurement":"m","tags":{"t":"a","t":"b"},"fields":{"f":1}}`, Limits{}, `point[1]: duplicate tag "t"`, ErrInvalid},
		{"unknown key", `{"measurement":"m","fields":{"f":1},"timestamp":1}`, Limits{}, `point[1]: unknown key "timestamp" (want measurement, tags, fields, time, precision)`, ErrInvalid},
		{"duplicate key", `{"measurement":"m","measurement":"n","fields":{"f":1}}`, Limits{}, `point[1]: duplicate key "measurement"`, ErrInvalid},
		{"bad time string", `{"measurement":"m","fields":{"f":1},"time":"yesterday"}`, Limits{}, `point[1]: time "yesterday": not an RFC 3339 time`, ErrInvalid},
		{"time boolean", `{"measurement":"m","fields":{"f":1},"time":true}`, Limits{}, "point[1]: time: must be a number or an RFC 3339 string, not a boolean", ErrInvalid},
		{"time overflow", `{"measurement":"m","fields":{"f":1},"time":9223372036854775807,"precision":"s"}`, Limits{}, "point[1]: time 9223372036854775807: out of range for precision s", ErrInvalid},
		{"time too big", `{"measurement":"m","fields":{"f":1},"time":1e300}`, Limits{}, "point[1]: time 1e300: out of range for precision ms", ErrInvalid},
		{"bad precision", `{"measurement":"m","fields":{"f":1},"precision":"d"}`, Limits{}, `point[1]: precision "d": want ns, us, ms or s`, ErrInvalid},
		{"limit MaxFields", `{"measurement":"m","fields":{"a":1,"b":2,"c":3}}`, small, "point[1]: more than 2 fields: limit MaxFields=2", ErrLimit},
		{"limit MaxTags", `{"measurement":"m","tags":{"a":"1","b":"2"},"fields":{"f":1}}`, small, "point[1]: more than 1 tags: limit MaxTags=1", ErrLimit},
		{"limit MaxNameBytes", `{"measurement":"mmmmm","fields":{"f":1}}`, small, `point[1]: measurement "mmmmm": 5 bytes exceed limit MaxNameBytes=4`, ErrLimit},
		{"limit MaxNameBytes field", `{"measurement":"m","fields":{"fffff":1}}`, small, `point[1]: field key "fffff": 5 bytes exceed limit MaxNameBytes=4`, ErrLimit},
		{"limit MaxTagValueBytes", `{"measurement":"m","tags":{"t":"vvvv"},"fields":{"f":1}}`, small, `point[1]: tag "t": value of 4 bytes exceeds limit MaxTagValueBytes=3`, ErrLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := "[" + ok + "," + tc.obj + "," + ok + "]"
			res, err := ParseJSON(nil, []byte(body), JSONOptions{Now: fixedNow, Limits: tc.limits})
			if err != nil {
				t.Fatalf("ParseJSON(%s): unexpected body error %v", body, err)
			}
			got := res.Err()
			if got == nil {
				t.Fatalf("ParseJSON(%s): no error, want %q", body, tc.wantErr)
			}
			if got.Error() != tc.wantErr || !errors.Is(got, tc.kind) {
				t.Errorf("ParseJSON(%s): got error %q, want %q (%v)", body, got, tc.wantErr, tc.kind)
			}
			want := []Point{pt("m", "f", testNowMs, 1), pt("m", "f", testNowMs, 1)}
			if diff := cmp.Diff(want, res.Points); diff != "" || res.Objects != 2 || res.Rejected != 1 {
				t.Errorf("ParseJSON(%s): got %d objects, %d rejected, points (-want +got):\n%s", body, res.Objects, res.Rejected, diff)
			}
		})
	}
}

func TestParseJSONBodyErrors(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{``, "parse json points: offset 0: unexpected end of input"},
		{`[{"measurement":"m",}]`, "parse json points: offset 20: invalid character '}' looking for beginning of object key string"},
		{`[{"measurement":"m"}`, "parse json points: offset 20: unexpected end of input"},
		{`"x"`, "parse json points: body must be an object or an array of objects"},
		{`{"measurement":"m","fields":{"f":1}} {}`, "parse json points: offset 37: data after the top-level value"},
		{`[] x`, "parse json points: offset 3: data after the top-level value"},
	}
	for _, tc := range tests {
		res, err := ParseJSON([]Point{pt("keep", "f", 0, 1)}, []byte(tc.in), JSONOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseJSON(%q): got error %v, want %q wrapping ErrInvalid", tc.in, err, tc.wantErr)
		}
		if len(res.Points) != 1 || res.Objects != 0 {
			t.Errorf("ParseJSON(%q): got %d points, %d objects after a body error; want dst unchanged", tc.in, len(res.Points), res.Objects)
		}
	}
}

func TestParseJSONNowOncePerBody(t *testing.T) {
	calls := 0
	now := func() time.Time { calls++; return testNow }
	res, err := ParseJSON(nil, []byte(`[{"measurement":"m","fields":{"f":1}},{"measurement":"m","fields":{"f":2}}]`), JSONOptions{Now: now})
	if err != nil || calls != 1 || len(res.Points) != 2 {
		t.Errorf("got %d points, error %v, %d calls of Now; want 2 points, 1 call", len(res.Points), err, calls)
	}
}

func TestAppendJSON(t *testing.T) {
	pts := []Point{
		pt("weather", "temp", 5, 21.5, "device", "d1", "site", "n"),
		pt("weather", "hum", 5, 40, "device", "d1", "site", "n"),
		pt("a\"b", "f\\", 6, -1e-7),
	}
	got, err := AppendJSON(nil, pts)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"measurement":"weather","tags":{"device":"d1","site":"n"},"fields":{"temp":21.5,"hum":40},"time":5},` +
		`{"measurement":"a\"b","fields":{"f\\":-1e-07},"time":6}]`
	if string(got) != want {
		t.Errorf("AppendJSON = %s\nwant %s", got, want)
	}
	if _, err := AppendJSON(nil, []Point{pt("m", "f\n", 0, 1)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendJSON(field with newline): got %v, want ErrInvalid", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pts := randPoints(r, 2000)
	body, err := AppendJSON(nil, pts)
	if err != nil {
		t.Fatalf("AppendJSON: %v", err)
	}
	res, err := ParseJSON(nil, body, JSONOptions{Limits: Limits{MaxFields: -1}})
	if err != nil || res.Err() != nil {
		t.Fatalf("ParseJSON(AppendJSON(pts)): %v, %v", err, res.Err())
	}
	if diff := cmp.Diff(pts, res.Points); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
