package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-iot/vigil/internal/appdb"
)

// send sends a request with a JSON body (nil: none) as token tok and returns
// status, headers and body. It is safe to call from any goroutine.
func (e *env) send(method, target, tok string, hdr http.Header, body any) (int, http.Header, string, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return 0, nil, "", err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+target, rd)
	if err != nil {
		return 0, nil, "", err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if secret, ok := e.tokens[tok]; ok {
		req.Header.Set("Authorization", "Token "+secret)
	} else if tok != "" {
		req.Header.Set("Authorization", "Token "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// call is send for the test goroutine: it fails the test on transport
// errors, and when want is not 0 and the status differs.
func (e *env) call(t *testing.T, method, target, tok string, hdr http.Header, body any, want int) (http.Header, string) {
	t.Helper()
	st, h, b, err := e.send(method, target, tok, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if want != 0 && st != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, target, st, b, want)
	}
	return h, b
}

// wantError checks a JSON error response: status and a message naming want.
func (e *env) wantError(t *testing.T, method, target, tok string, hdr http.Header, body any, status int, want string) {
	t.Helper()
	st, h, b, err := e.send(method, target, tok, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	var msg struct{ Code, Message string }
	if st != status || json.Unmarshal([]byte(b), &msg) != nil || !strings.Contains(msg.Message, want) || h.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("%s %s %v: got %d %s, want %d with a JSON message naming %q", method, target, body, st, b, status, want)
	}
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

type anomalyResp struct {
	ID       string `json:"id"`
	Device   string `json:"device"`
	Series   string `json:"series"`
	State    string `json:"state"`
	Severity string `json:"severity"`
	Assignee string `json:"assignee"`
	Ongoing  bool   `json:"ongoing"`
	Comments []struct {
		Author, Text string
	} `json:"comments"`
	Version int64 `json:"version"`
}

type anomalyPage struct {
	Anomalies  []anomalyResp `json:"anomalies"`
	NextCursor string        `json:"next_cursor"`
}

// seedAnomalies stores n anomalies in the application store: devices d0/d1
// alternating, starts one minute apart from now-n minutes, severities and
// states cycling, every third one closed.
func seedAnomalies(t *testing.T, e *env, n int) []appdb.Anomaly {
	t.Helper()
	sev := []appdb.Severity{appdb.SeverityInfo, appdb.SeverityWarning, appdb.SeverityCritical}
	st := []appdb.AnomalyState{appdb.StateOpen, appdb.StateOpen, appdb.StateAcknowledged, appdb.StateResolved}
	var out []appdb.Anomaly
	for i := range n {
		a := appdb.Anomaly{
			ID:        fmt.Sprintf("a%03d", i),
			Device:    fmt.Sprintf("d%d", i%2),
			SeriesKey: fmt.Sprintf("env,device=d%d temp", i%2),
			Start:     now.Add(time.Duration(i-n) * time.Minute),
			PeakScore: 0.9,
			Severity:  sev[i%3],
			State:     st[i%4],
			Detectors: []string{"mad"},
		}
		if i%3 == 0 {
			a.End = a.Start.Add(30 * time.Second)
		}
		a, err := e.db.Anomalies().Create(t.Context(), a)
		if err != nil {
			t.Fatalf("create anomaly %d: %v", i, err)
		}
		out = append(out, a)
	}
	return out
}

// walk GETs every page of target (which has a query) with the read token.
func walk(t *testing.T, e *env, target string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("%s: more than 100 pages", target)
		}
		_, body := e.call(t, "GET", target+"&cursor="+url.QueryEscape(cursor), "read", nil, nil, http.StatusOK)
		p := decode[anomalyPage](t, body)
		for _, a := range p.Anomalies {
			ids = append(ids, a.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
}

func TestAnomaliesListFiltersAndPages(t *testing.T) {
	e := newEnv(t, envOptions{})
	all := seedAnomalies(t, e, 23)
	ids := func(keep func(appdb.Anomaly) bool, desc bool) []string {
		var out []string
		for _, a := range all {
			if keep(a) {
				out = append(out, a.ID)
			}
		}
		if desc {
			slices.Reverse(out)
		}
		return out
	}
	everything := func(appdb.Anomaly) bool { return true }
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all newest first", "limit=5", ids(everything, true)},
		{"all oldest first", "limit=4&order=asc", ids(everything, false)},
		{"device", "limit=3&device=d1", ids(func(a appdb.Anomaly) bool { return a.Device == "d1" }, true)},
		{"series", "series=" + url.QueryEscape("env,device=d0 temp"), ids(func(a appdb.Anomaly) bool { return a.Device == "d0" }, true)},
		{"state", "limit=2&state=resolved", ids(func(a appdb.Anomaly) bool { return a.State == appdb.StateResolved }, true)},
		{"severity", "severity=critical&order=asc", ids(func(a appdb.Anomaly) bool { return a.Severity == appdb.SeverityCritical }, false)},
		{"ongoing", "limit=6&ongoing=true", ids(func(a appdb.Anomaly) bool { return a.Ongoing() }, true)},
		{"time range, to exclusive", "from=" + iso(all[5].Start) + "&to=" + iso(all[9].Start),
			ids(func(a appdb.Anomaly) bool { return !a.Start.Before(all[5].Start) && a.Start.Before(all[9].Start) }, true)},
		{"combined", "device=d0&state=open&limit=1", ids(func(a appdb.Anomaly) bool { return a.Device == "d0" && a.State == appdb.StateOpen }, true)},
		{"none", "device=nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, e, "/api/v1/anomalies?"+tt.query)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET /api/v1/anomalies?%s (-want +got):\n%s", tt.query, diff)
			}
		})
	}
	bad := []struct{ query, names string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"order=up", "order"},
		{"state=closed", "state"},
		{"severity=fatal", "severity"},
		{"ongoing=maybe", "ongoing"},
		{"from=yesterday", "from"},
		{"from=" + iso(now) + "&to=" + iso(now.Add(-time.Hour)), "after to"},
		{"cursor=!!", "cursor"},
	}
	for _, b := range bad {
		e.wantError(t, "GET", "/api/v1/anomalies?"+b.query, "read", nil, nil, http.StatusBadRequest, b.names)
	}
	// A cursor made for one order is refused for the other.
	_, body := e.call(t, "GET", "/api/v1/anomalies?limit=1", "read", nil, nil, http.StatusOK)
	next := decode[anomalyPage](t, body).NextCursor
	e.wantError(t, "GET", "/api/v1/anomalies?order=asc&cursor="+next, "read", nil, nil, http.StatusBadRequest, "cursor")

	h, body := e.call(t, "GET", "/api/v1/anomalies/a007", "read", nil, nil, http.StatusOK)
	if got := decode[anomalyResp](t, body); got.ID != "a007" || got.Device != "d1" || h.Get("ETag") != `"1"` {
		t.Errorf("GET /api/v1/anomalies/a007 = %s (ETag %s), want a007 of d1 with ETag \"1\"", body, h.Get("ETag"))
	}
	e.wantError(t, "GET", "/api/v1/anomalies/nope", "read", nil, nil, http.StatusNotFound, "nope")
}

func TestAnomalyTransitions(t *testing.T) {
	e := newEnv(t, envOptions{})
	seedAnomalies(t, e, 1) // a000, open
	type step struct {
		method, path string
		hdr          http.Header
		body         any
		status       int
		state        string // after the step, when status is 2xx
		version      int64
		errNames     string
	}
	ifMatch := func(v string) http.Header { return http.Header{"If-Match": {v}} }
	steps := []step{
		{"POST", "/acknowledge", nil, nil, 200, "acknowledged", 2, ""},
		{"POST", "/acknowledge", nil, nil, 200, "acknowledged", 2, ""}, // idempotent: nothing written
		{"PATCH", "", nil, map[string]any{"state": "bogus"}, 400, "", 0, "state"},
		{"PATCH", "", nil, map[string]any{}, 400, "", 0, "assignee, state"},
		{"PATCH", "", nil, `{"assignee":"x","colour":"red"}`, 400, "", 0, "colour"},
		{"PATCH", "", nil, `{"assignee":`, 400, "", 0, "body"},
		{"PATCH", "", ifMatch(`"1"`), map[string]any{"assignee": "alice"}, 412, "", 0, "version 1"},
		{"PATCH", "", ifMatch(`"x"`), map[string]any{"assignee": "alice"}, 400, "", 0, "If-Match"},
		{"PATCH", "", ifMatch(`"2"`), map[string]any{"assignee": "alice"}, 200, "acknowledged", 3, ""},
		{"POST", "/resolve", ifMatch(`W/"3"`), nil, 200, "resolved", 4, ""},
		{"POST", "/resolve", nil, nil, 200, "resolved", 4, ""},
		{"POST", "/acknowledge", nil, nil, 409, "", 0, "resolved -> acknowledged"},
		{"PATCH", "", nil, map[string]any{"state": "acknowledged"}, 409, "", 0, "resolved -> acknowledged"},
		{"PATCH", "", nil, map[string]any{"state": "open"}, 200, "open", 5, ""}, // explicit reopen
		{"POST", "/resolve", nil, nil, 200, "resolved", 6, ""},                  // open -> resolved
		{"PATCH", "", nil, map[string]any{"state": "open", "assignee": ""}, 200, "open", 7, ""},
	}
	for i, s := range steps {
		target := "/api/v1/anomalies/a000" + s.path
		if s.status >= 300 {
			e.wantError(t, s.method, target, "write", s.hdr, s.body, s.status, s.errNames)
			continue
		}
		h, body := e.call(t, s.method, target, "write", s.hdr, s.body, s.status)
		got := decode[anomalyResp](t, body)
		if got.State != s.state || got.Version != s.version || h.Get("ETag") != fmt.Sprintf(`"%d"`, s.version) {
			t.Errorf("step %d %s %s: got state %s version %d ETag %s, want %s %d", i, s.method, target, got.State, got.Version, h.Get("ETag"), s.state, s.version)
		}
	}
	a, err := e.db.Anomalies().Get(t.Context(), "a000")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != appdb.StateOpen || a.Assignee != "" || a.Version != 7 {
		t.Errorf("stored anomaly: state %s assignee %q version %d, want open, \"\", 7", a.State, a.Assignee, a.Version)
	}
	for _, p := range []string{"/acknowledge", "/resolve"} {
		e.wantError(t, "POST", "/api/v1/anomalies/nope"+p, "write", nil, nil, http.StatusNotFound, "nope")
	}
	e.wantError(t, "PATCH", "/api/v1/anomalies/nope", "write", nil, map[string]any{"assignee": "bob"}, http.StatusNotFound, "nope")
}

func TestAnomalyComments(t *testing.T) {
	e := newEnv(t, envOptions{})
	seedAnomalies(t, e, 1)
	for _, tok := range []string{"write", "admin"} {
		e.call(t, "POST", "/api/v1/anomalies/a000/comments", tok, nil, map[string]any{"text": "seen by " + tok}, http.StatusCreated)
	}
	_, body := e.call(t, "GET", "/api/v1/anomalies/a000", "read", nil, nil, http.StatusOK)
	got := decode[anomalyResp](t, body)
	want := []struct{ Author, Text string }{{"write", "seen by write"}, {"admin", "seen by admin"}}
	if diff := cmp.Diff(want, got.Comments); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
	e.wantError(t, "POST", "/api/v1/anomalies/a000/comments", "write", nil, map[string]any{"text": ""}, http.StatusBadRequest, "text")
	e.wantError(t, "POST", "/api/v1/anomalies/a000/comments", "write", nil, map[string]any{"text": strings.Repeat("x", 9000)}, http.StatusBadRequest, "text")
	e.wantError(t, "POST", "/api/v1/anomalies/a000/comments", "write", nil, nil, http.StatusBadRequest, "empty")
	e.wantError(t, "POST", "/api/v1/anomalies/nope/comments", "write", nil, map[string]any{"text": "hi"}, http.StatusNotFound, "nope")
}

// TestAnomalyConcurrentChanges races acknowledgements, comments and an
// assignment on one anomaly: every change must survive.
func TestAnomalyConcurrentChanges(t *testing.T) {
	e := newEnv(t, envOptions{})
	seedAnomalies(t, e, 1)
	const acks, comments = 4, 4
	var wg sync.WaitGroup
	errs := make(chan error, acks+comments+1)
	req := func(method, path string, body any, want int) {
		defer wg.Done()
		st, _, b, err := e.send(method, "/api/v1/anomalies/a000"+path, "write", nil, body)
		if err == nil && st != want {
			err = fmt.Errorf("%s %s: got %d %s, want %d", method, path, st, b, want)
		}
		errs <- err
	}
	wg.Add(acks + comments + 1)
	for i := range comments {
		go req("POST", "/comments", map[string]any{"text": fmt.Sprint("c", i)}, http.StatusCreated)
	}
	for range acks {
		go req("POST", "/acknowledge", nil, http.StatusOK)
	}
	go req("PATCH", "", map[string]any{"assignee": "alice"}, http.StatusOK)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	a, err := e.db.Anomalies().Get(t.Context(), "a000")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, c := range a.Comments {
		texts = append(texts, c.Text)
	}
	slices.Sort(texts)
	if a.State != appdb.StateAcknowledged || a.Assignee != "alice" || !slices.Equal(texts, []string{"c0", "c1", "c2", "c3"}) {
		t.Errorf("after the race: state %s assignee %q comments %v; want acknowledged, alice, c0..c3", a.State, a.Assignee, texts)
	}
	// 1 (create) + 4 comments + 1 acknowledgement + 1 assignment.
	if a.Version != 7 {
		t.Errorf("version %d after the race, want 7 (repeated acknowledgements write nothing)", a.Version)
	}
}
