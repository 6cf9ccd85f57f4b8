package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/httpapi"
)

// seed writes a small data set: two devices, values at t0+0s..t0+3s.
func seed(t *testing.T, e *env) time.Time {
	t.Helper()
	t0 := now.Add(-30 * time.Minute).Truncate(time.Minute)
	var b strings.Builder
	for i := range 4 {
		ts := t0.Add(time.Duration(i) * time.Second).UnixMilli()
		fmt.Fprintf(&b, "env,device=d1,room=a temp=%d,hum=%d %d\n", 20+i, 50-i, ts)
		fmt.Fprintf(&b, "env,device=d2,room=b temp=%d %d\n", 10*i, ts)
	}
	fmt.Fprintf(&b, "env,device=d2,room=b temp=NaN_is_not_line_protocol %d\n", t0.UnixMilli())
	st, _, body := e.do(t, "POST", "/api/v2/write?precision=ms", "write", nil, strings.NewReader(b.String()))
	if st != http.StatusBadRequest { // the last line is refused on purpose
		t.Fatalf("seed: got %d %s, want 400 for the last line only", st, body)
	}
	return t0
}

func TestQueryRaw(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := seed(t, e)
	tests := []struct {
		name   string
		params url.Values
		want   map[string][]sample // key -> samples
	}{
		{"device and field", url.Values{"device": {"d1"}, "field": {"temp"}},
			map[string][]sample{"env,device=d1,room=a temp": {{iso(t0), 20.0}, {iso(t0.Add(time.Second)), 21.0}, {iso(t0.Add(2 * time.Second)), 22.0}, {iso(t0.Add(3 * time.Second)), 23.0}}}},
		{"tag filter and range, end exclusive", url.Values{"tag.room": {"b"}, "start": {iso(t0.Add(time.Second))}, "end": {fmt.Sprint(t0.Unix() + 3)}},
			map[string][]sample{"env,device=d2,room=b temp": {{iso(t0.Add(time.Second)), 10.0}, {iso(t0.Add(2 * time.Second)), 20.0}}}},
		{"no match", url.Values{"measurement": {"nope"}}, map[string][]sample{}},
		{"outside default 1h range", url.Values{"end": {iso(t0.Add(-time.Minute))}}, map[string][]sample{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string][]sample{}
			for _, s := range e.query(t, "/api/v1/query", tt.params) {
				got[s.Key] = s.Samples
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("query %v (-want +got):\n%s", tt.params, diff)
			}
		})
	}
}

func TestQueryDownsample(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := seed(t, e)
	got := e.query(t, "/api/v1/query", url.Values{"device": {"d1"}, "field": {"temp"}, "step": {"2s"}, "agg": {"avg,max,count"}})
	if len(got) != 1 {
		t.Fatalf("got %d series, want 1", len(got))
	}
	want := []map[string]any{
		{"time": iso(t0), "avg": 20.5, "max": 21.0, "count": 2.0},
		{"time": iso(t0.Add(2 * time.Second)), "avg": 22.5, "max": 23.0, "count": 2.0},
	}
	if diff := cmp.Diff(want, got[0].Buckets); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
}

func TestQueryCSV(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := seed(t, e)
	tests := []struct {
		name, target string
		want         string
	}{
		{"raw", "/api/v1/query?device=d2&end=" + fmt.Sprint(t0.Unix()+2),
			"measurement,tags,field,time,value\n" +
				"env,\"device=d2,room=b\",temp," + iso(t0) + ",0\n" +
				"env,\"device=d2,room=b\",temp," + iso(t0.Add(time.Second)) + ",10\n"},
		{"buckets", "/api/v1/query?device=d2&step=1h&agg=min,sum",
			"measurement,tags,field,time,min,sum\n" +
				"env,\"device=d2,room=b\",temp," + iso(t0.Truncate(time.Hour)) + ",0,60\n"},
		{"last", "/api/v1/last?device=d1&field=hum",
			"measurement,tags,field,time,value\n" +
				"env,\"device=d1,room=a\",hum," + iso(t0.Add(3*time.Second)) + ",47\n"},
		{"series", "/api/v1/series?device=d1",
			"key,measurement,tags,field\n" +
				"\"env,device=d1,room=a hum\",env,\"device=d1,room=a\",hum\n" +
				"\"env,device=d1,room=a temp\",env,\"device=d1,room=a\",temp\n"},
		{"devices", "/api/v1/devices",
			"device,series,last_seen\n" +
				"d1,2," + iso(t0.Add(3*time.Second)) + "\n" +
				"d2,1," + iso(t0.Add(3*time.Second)) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, hdr, body := e.do(t, "GET", tt.target, "read", http.Header{"Accept": {"text/csv"}}, nil)
			if st != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
				t.Fatalf("GET %s: got %d %s %s", tt.target, st, hdr.Get("Content-Type"), body)
			}
			if diff := cmp.Diff(tt.want, body); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", tt.target, diff)
			}
		})
	}
}

func TestLastSeriesDevicesJSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := seed(t, e)
	last := e.query(t, "/api/v1/last", url.Values{"field": {"temp"}})
	gotLast := map[string]sample{}
	for _, s := range last {
		gotLast[s.Key] = sample{s.Time, s.Value}
	}
	wantLast := map[string]sample{
		"env,device=d1,room=a temp": {iso(t0.Add(3 * time.Second)), 23.0},
		"env,device=d2,room=b temp": {iso(t0.Add(3 * time.Second)), 30.0},
	}
	if diff := cmp.Diff(wantLast, gotLast); diff != "" {
		t.Errorf("/last (-want +got):\n%s", diff)
	}
	series := e.query(t, "/api/v1/series", url.Values{"measurement": {"env"}, "tag.room": {"a"}})
	var keys []string
	for _, s := range series {
		keys = append(keys, s.Key)
		if s.Tags["device"] != "d1" || s.Measurement != "env" {
			t.Errorf("series %+v: want device d1, measurement env", s)
		}
	}
	if diff := cmp.Diff([]string{"env,device=d1,room=a hum", "env,device=d1,room=a temp"}, keys); diff != "" {
		t.Errorf("/series (-want +got):\n%s", diff)
	}
	st, _, body := e.do(t, "GET", "/api/v1/devices", "read", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("/devices: got %d %s", st, body)
	}
	var devs struct {
		Devices []struct {
			Device   string `json:"device"`
			Series   int    `json:"series"`
			LastSeen string `json:"last_seen"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(body), &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs.Devices) != 2 || devs.Devices[0].Device != "d1" || devs.Devices[0].Series != 2 || devs.Devices[1].LastSeen != iso(t0.Add(3*time.Second)) {
		t.Errorf("/devices = %s; want d1 with 2 series, d2 last seen %s", body, iso(t0.Add(3*time.Second)))
	}
}

func TestQueryBadParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct{ target, wantMsg string }{
		{"/api/v1/query?start=yesterday", `time \"yesterday\"`},
		{"/api/v1/query?start=now&end=-1h", "is not before end"},
		{"/api/v1/query?step=0s", `step \"0s\"`},
		{"/api/v1/query?step=1m&agg=median", `aggregate \"median\"`},
		{"/api/v1/query?agg=avg", "without step"},
		{"/api/v1/last?end=abc", `time \"abc\"`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			st, _, body := e.do(t, "GET", tt.target, "read", nil, nil)
			if st != http.StatusBadRequest || !strings.Contains(body, `"code":"invalid"`) || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("GET %s: got %d %s; want 400 invalid naming %s", tt.target, st, body, tt.wantMsg)
			}
		})
	}
}

func TestProbes(t *testing.T) {
	var ready error
	e := newEnv(t, envOptions{ready: func(context.Context) []httpapi.Check {
		return []httpapi.Check{{Name: "tsdb"}, {Name: "appdb", Err: ready}}
	}})
	st, hdr, _ := e.do(t, "HEAD", "/ping", "", nil, nil)
	if st != http.StatusNoContent || hdr.Get("X-Influxdb-Version") != "1.8.10-vigil" || hdr.Get("X-Influxdb-Build") != "OSS" {
		t.Errorf("HEAD /ping: got %d %v", st, hdr)
	}
	st, _, body := e.do(t, "GET", "/ping?verbose=true", "", nil, nil)
	if st != http.StatusOK || !strings.Contains(body, `"version":"1.8.10-vigil"`) {
		t.Errorf("GET /ping?verbose=true: got %d %s", st, body)
	}
	st, _, body = e.do(t, "GET", "/health", "", nil, nil)
	var h map[string]any
	_ = json.Unmarshal([]byte(body), &h)
	if st != http.StatusOK || h["name"] != "influxdb" || h["status"] != "pass" || h["message"] != "ready for queries and writes" || h["version"] != "1.8.10-vigil" {
		t.Errorf("GET /health: got %d %s", st, body)
	}
	st, _, body = e.do(t, "GET", "/readyz", "", nil, nil)
	if st != http.StatusOK || !strings.Contains(body, `"status":"ready"`) {
		t.Errorf("GET /readyz (ready): got %d %s", st, body)
	}
	ready = errors.New("database is locked")
	st, _, body = e.do(t, "GET", "/readyz", "", nil, nil)
	if st != http.StatusServiceUnavailable || !strings.Contains(body, `{"name":"appdb","status":"fail","message":"database is locked"}`) {
		t.Errorf("GET /readyz (appdb failing): got %d %s", st, body)
	}
	st, _, body = e.do(t, "GET", "/health", "", nil, nil)
	if st != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"fail"`) {
		t.Errorf("GET /health (appdb failing): got %d %s", st, body)
	}
	st, _, body = e.do(t, "GET", "/healthz", "", nil, nil)
	if st != http.StatusOK {
		t.Errorf("GET /healthz: got %d %s", st, body)
	}
	st, _, body = e.do(t, "GET", "/nope", "read", nil, nil)
	if st != http.StatusNotFound || !strings.Contains(body, `"code":"not found"`) {
		t.Errorf("GET /nope: got %d %s", st, body)
	}
}
