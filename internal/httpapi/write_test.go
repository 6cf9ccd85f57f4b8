package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/ingest"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

func gz(t testing.TB, s string) *bytes.Buffer {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestWriteRaw covers the write endpoints with raw requests: encodings,
// precisions, limits and error shapes. Each case checks the status, that the
// error body names what it must, and what was stored.
func TestWriteRaw(t *testing.T) {
	t0 := now.Add(-time.Minute)
	ns := fmt.Sprint(t0.UnixNano())
	tests := []struct {
		name     string
		limits   ingest.Limits
		target   string
		tok      string
		hdr      http.Header
		body     func(t *testing.T) *bytes.Buffer
		want     int
		wantBody []string // substrings of the body
		stored   int      // samples of measurement m stored afterwards
	}{
		{name: "v2 ns default", target: "/api/v2/write?org=o&bucket=b", tok: "write",
			body: lit("m,device=d1 a=1,b=2i " + ns + "\nm,device=d1 a=3 " + fmt.Sprint(t0.Add(time.Second).UnixNano())), want: 204, stored: 3},
		{name: "v2 conflicting rewrite", target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1 " + ns + "\nm,device=d1 a=3 " + ns), want: 409, wantBody: []string{`"code":"conflict"`, "series m,device=d1 a at 2026-11-27T11:59:00Z", "dropped=1"}, stored: 1},
		{name: "v1 with db and rp", target: "/write?db=x&rp=y&precision=s", tok: "write",
			body: lit(fmt.Sprintf("m,device=d1 a=1 %d", t0.Unix())), want: 204, stored: 1},
		{name: "v1 precision m", target: "/write?db=x&precision=m", tok: "write",
			body: lit(fmt.Sprintf("m,device=d1 a=1 %d", t0.Unix()/60)), want: 204, stored: 1},
		{name: "v1 token in query p", target: "/write?db=x&u=me&p=WRITE", tok: "",
			body: lit("m,device=d1 a=1 " + ns), want: 204, stored: 1},
		{name: "v2 gzip", target: "/api/v2/write?precision=ns", tok: "write", hdr: http.Header{"Content-Encoding": {"gzip"}},
			body: func(t *testing.T) *bytes.Buffer { return gz(t, "m,device=d1 a=1 "+ns+"\n") }, want: 204, stored: 1},
		{name: "v2 bad gzip", target: "/api/v2/write", tok: "write", hdr: http.Header{"Content-Encoding": {"gzip"}},
			body: lit("not gzip"), want: 415, wantBody: []string{`"code":"unsupported media type"`}},
		{name: "v2 unknown encoding", target: "/api/v2/write", tok: "write", hdr: http.Header{"Content-Encoding": {"br"}},
			body: lit("m a=1"), want: 415, wantBody: []string{`\"br\"`}},
		{name: "v2 bad precision", target: "/api/v2/write?precision=m", tok: "write",
			body: lit("m a=1"), want: 400, wantBody: []string{`"code":"invalid"`, `precision \"m\"`}},
		{name: "v1 bad precision", target: "/write?precision=d", tok: "write",
			body: lit("m a=1"), want: 400, wantBody: []string{`{"error":`, `precision \"d\"`}},
		{name: "body too large", limits: ingest.Limits{MaxBodyBytes: 64}, target: "/api/v2/write", tok: "write",
			body: lit(strings.Repeat("m,device=d1 a=1 "+ns+"\n", 10)), want: 413, wantBody: []string{"MaxBodyBytes=64"}},
		{name: "gzip body too large after decompression", limits: ingest.Limits{MaxBodyBytes: 64}, target: "/api/v2/write", tok: "write",
			hdr:  http.Header{"Content-Encoding": {"gzip"}},
			body: func(t *testing.T) *bytes.Buffer { return gz(t, strings.Repeat("m,device=d1 a=1 "+ns+"\n", 10)) }, want: 413, wantBody: []string{"MaxBodyBytes=64"}},
		{name: "v2 partial write", target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1 " + ns + "\nm,device=d1 a=oops " + ns + "\nm,device=d2 a=2 " + ns + "\nm a\n"),
			want: 400, wantBody: []string{`"code":"invalid"`, "partial write: line 2", "2 points written", "rejected 2 lines", "dropped=2"}, stored: 2},
		{name: "v1 partial write", target: "/write?db=x", tok: "write",
			body: lit("m,device=d1 a=1 " + ns + "\nbad\n"),
			want: 400, wantBody: []string{`{"error":"partial write: line 2`, "dropped=1"}, stored: 1},
		{name: "line too long", limits: ingest.Limits{Line: telemetry.Limits{MaxLineBytes: 40}}, target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1 " + ns + "\nm,device=d1 a=1,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=2 " + ns),
			want: 400, wantBody: []string{"line 2", "MaxLineBytes=40"}, stored: 1},
		{name: "too many fields", limits: ingest.Limits{Line: telemetry.Limits{MaxFields: 2}}, target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1,b=2,c=3 " + ns), want: 400, wantBody: []string{"line 1", "MaxFields=2"}},
		{name: "series limit", limits: ingest.Limits{MaxSeries: 2}, target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1,b=2,c=3 " + ns), want: 422, wantBody: []string{"MaxSeries=2", "m,device=d1 c"}, stored: 2},
		{name: "series per device limit", limits: ingest.Limits{MaxSeriesPerDevice: 1}, target: "/api/v2/write", tok: "write",
			body: lit("m,device=d1 a=1,b=2 " + ns + "\nm,device=d2 a=1 " + ns),
			want: 422, wantBody: []string{"MaxSeriesPerDevice=1", `device \"d1\"`}, stored: 2},
		{name: "out of window", target: "/api/v2/write?precision=s", tok: "write",
			body: lit(fmt.Sprintf("m,device=d1 a=1 %d\nm,device=d1 a=2 %d", t0.Unix(), now.Add(-48*time.Hour).Unix())),
			want: 422, wantBody: []string{`"code":"unprocessable entity"`, "outside the accepted window"}, stored: 1},
		{name: "device prefix allows", target: "/api/v2/write", tok: "site1",
			body: lit("m,device=site1-a a=1 " + ns), want: 204, stored: 1},
		{name: "device prefix refuses whole batch", target: "/api/v2/write", tok: "site1",
			body: lit("m,device=site1-a a=1 " + ns + "\nm,device=site2-b a=1 " + ns),
			want: 403, wantBody: []string{`device \"site2-b\"`, `prefix \"site1-\"`}, stored: 0},
		{name: "read token cannot write", target: "/api/v2/write", tok: "read",
			body: lit("m a=1"), want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{limits: tt.limits})
			target := strings.ReplaceAll(tt.target, "WRITE", url.QueryEscape(e.tokens["write"]))
			st, hdr, body := e.do(t, "POST", target, tt.tok, tt.hdr, tt.body(t))
			t.Logf("POST %s: %d %s", tt.target, st, body)
			if st != tt.want {
				t.Fatalf("POST %s: got %d %s, want %d", tt.target, st, body, tt.want)
			}
			if st != 204 {
				if !json.Valid([]byte(body)) {
					t.Errorf("error body %q is not JSON", body)
				}
				if strings.HasPrefix(tt.target, "/write") && hdr.Get("X-Influxdb-Error") == "" {
					t.Error("1.x error without X-Influxdb-Error header")
				}
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("body %s does not contain %s", body, s)
				}
			}
			n := 0
			for _, s := range e.query(t, "/api/v1/query", url.Values{"measurement": {"m"}, "start": {"-72h"}}) {
				n += len(s.Samples)
			}
			if n != tt.stored {
				t.Errorf("stored %d samples, want %d", n, tt.stored)
			}
		})
	}
}

func lit(s string) func(*testing.T) *bytes.Buffer {
	return func(*testing.T) *bytes.Buffer { return bytes.NewBufferString(s) }
}

// blockingWriter holds every write until release is closed: a decorator over
// the real store that keeps writes in flight.
type blockingWriter struct {
	ingest.Writer
	entered chan struct{}
	release chan struct{}
}

func (b blockingWriter) WritePoints(ctx context.Context, pts []telemetry.Point) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Writer.WritePoints(ctx, pts)
}

// TestWriteBackPressure checks that a write beyond MaxInFlight is refused
// with 503 and Retry-After, and that the write in flight then succeeds.
func TestWriteBackPressure(t *testing.T) {
	bw := blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, envOptions{limits: ingest.Limits{MaxInFlight: 1}, wrap: func(w ingest.Writer) ingest.Writer {
		bw.Writer = w
		return bw
	}})
	lp := "m,device=d1 a=1 " + fmt.Sprint(now.UnixNano())
	done := make(chan int)
	go func() {
		st, _, _ := e.do(t, "POST", "/api/v2/write", "write", nil, strings.NewReader(lp))
		done <- st
	}()
	<-bw.entered
	st, hdr, body := e.do(t, "POST", "/api/v2/write", "write", nil, strings.NewReader(lp))
	if st != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "MaxInFlight=1") {
		t.Errorf("second write: got %d Retry-After=%q %s; want 503 with Retry-After naming MaxInFlight=1", st, hdr.Get("Retry-After"), body)
	}
	close(bw.release)
	if st := <-done; st != http.StatusNoContent {
		t.Errorf("first write: got %d, want 204", st)
	}
}

// TestPartialWriteStoresValidLines checks that after a partial write the
// valid lines are queryable with their exact values.
func TestPartialWriteStoresValidLines(t *testing.T) {
	e := newEnv(t, envOptions{})
	t0 := now.Add(-time.Minute)
	lp := fmt.Sprintf("m,device=d1 a=1.5 %[1]d\nm,device=d1 a=x %[1]d\nm,device=d1 a=2.5 %[2]d\n", t0.UnixMilli(), t0.UnixMilli()+1)
	st, _, body := e.do(t, "POST", "/api/v2/write?precision=ms", "write", nil, strings.NewReader(lp))
	if st != http.StatusBadRequest {
		t.Fatalf("got %d %s, want 400", st, body)
	}
	got := e.query(t, "/api/v1/query", url.Values{"measurement": {"m"}, "start": {"-1h"}})
	want := []sample{{iso(t0), 1.5}, {iso(t0.Add(time.Millisecond)), 2.5}}
	if len(got) != 1 {
		t.Fatalf("got %d series, want 1", len(got))
	}
	if diff := cmp.Diff(want, got[0].Samples); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}

// TestWriteJSONPoints covers POST /api/v1/points.
func TestWriteJSONPoints(t *testing.T) {
	t0 := now.Add(-time.Minute)
	tests := []struct {
		name     string
		tok      string
		body     string
		want     int
		wantBody []string
		stored   []sample
	}{
		{name: "one object", tok: "write",
			body: fmt.Sprintf(`{"measurement":"m","tags":{"device":"d1"},"fields":{"a":1.25,"s":"text"},"time":%d}`, t0.UnixMilli()),
			want: 204, stored: []sample{{iso(t0), 1.25}}},
		{name: "array with RFC 3339 and precision", tok: "write",
			body: fmt.Sprintf(`[{"measurement":"m","tags":{"device":"d1"},"fields":{"a":2},"time":%q},
				{"measurement":"m","tags":{"device":"d1"},"fields":{"a":true},"time":%d,"precision":"s"}]`, iso(t0), t0.Unix()+1),
			want: 204, stored: []sample{{iso(t0), 2.0}, {iso(t0.Add(time.Second)), 1.0}}},
		{name: "partial", tok: "write",
			body: fmt.Sprintf(`[{"measurement":"m","tags":{"device":"d1"},"fields":{"a":2},"time":%d},{"measurement":"m","fields":{}}]`, t0.UnixMilli()),
			want: 400, wantBody: []string{"partial write: point[1]", "dropped=1"}, stored: []sample{{iso(t0), 2.0}}},
		{name: "malformed", tok: "write", body: `[{"measurement":`, want: 400, wantBody: []string{`"code":"invalid"`, "offset"}},
		{name: "device prefix", tok: "site1",
			body: `{"measurement":"m","tags":{"device":"d1"},"fields":{"a":1}}`, want: 403, wantBody: []string{`device \"d1\"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			st, _, body := e.do(t, "POST", "/api/v1/points", tt.tok, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(tt.body))
			if st != tt.want {
				t.Fatalf("got %d %s, want %d", st, body, tt.want)
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("body %s does not contain %s", body, s)
				}
			}
			var got []sample
			for _, s := range e.query(t, "/api/v1/query", url.Values{"measurement": {"m"}, "start": {"-1h"}}) {
				got = append(got, s.Samples...)
			}
			if diff := cmp.Diff(tt.stored, got); diff != "" {
				t.Errorf("stored samples (-want +got):\n%s", diff)
			}
		})
	}
}
