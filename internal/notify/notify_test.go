package notify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/bus/membus"
	"github.com/vigil-iot/vigil/internal/notify"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("s3cret")

// clock is a settable clock shared by the store and the relay.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is the webhook's other end: it records verified deliveries and
// fails the first failures requests.
type receiver struct {
	mu       sync.Mutex
	failures int
	requests int
	got      map[string][]byte // by event ID
	bad      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.requests <= rc.failures {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	id := r.Header.Get(notify.HeaderEventID)
	if !notify.Verify(secret, body, r.Header.Get(notify.HeaderSignature)) {
		rc.bad = append(rc.bad, "bad signature for "+id)
	}
	if _, err := strconv.ParseInt(r.Header.Get(notify.HeaderTimestamp), 10, 64); err != nil {
		rc.bad = append(rc.bad, "bad timestamp for "+id)
	}
	if r.Header.Get("Content-Type") != "application/json" {
		rc.bad = append(rc.bad, "bad content type for "+id)
	}
	rc.got[id] = body
	w.WriteHeader(http.StatusNoContent)
}

func setup(t *testing.T, failures int) (*sqlitedb.Store, *receiver, *httptest.Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	db, err := sqlitedb.Open(t.Context(), t.TempDir()+"/app.db", sqlitedb.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rc := &receiver{failures: failures, got: map[string][]byte{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return db, rc, srv, clk
}

func addMessages(t *testing.T, db appdb.Store, n int) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	for i := range n {
		id := "evt-" + strconv.Itoa(i)
		body := []byte(`{"id":"` + id + `","action":"open"}`)
		if _, err := db.Outbox().Create(t.Context(), appdb.OutboxMessage{ID: id, Topic: "anomalies", Key: "d1", Payload: body}); err != nil {
			t.Fatal(err)
		}
		want[id] = body
	}
	return want
}

func TestSign(t *testing.T) {
	body := []byte(`{"a":1}`)
	// printf '{"a":1}' | openssl dgst -sha256 -hmac s3cret
	const want = "sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d"
	sig := notify.Sign(secret, body)
	if sig != want {
		t.Errorf("Sign = %s, want %s", sig, want)
	}
	if !notify.Verify(secret, body, sig) {
		t.Errorf("Verify(Sign) = false")
	}
	for _, bad := range []string{"", "sha256=zz", sig[:len(sig)-2] + "00", "md5=" + sig[7:]} {
		if notify.Verify(secret, body, bad) {
			t.Errorf("Verify(%q) = true, want false", bad)
		}
	}
	if notify.Verify([]byte("other"), body, sig) {
		t.Errorf("Verify with another secret = true")
	}
}

func TestRelayDeliversSigned(t *testing.T) {
	db, rc, srv, clk := setup(t, 0)
	want := addMessages(t, db, 3)
	r := mustRelay(t, db.Outbox(), notify.Options{Webhook: &notify.Webhook{URL: srv.URL, Secret: secret}, Now: clk.Now})
	n, err := r.RelayOnce(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("RelayOnce = %d, %v; want 3, nil", n, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if d := cmp.Diff(want, rc.got); d != "" || len(rc.bad) > 0 {
		t.Errorf("received (-want +got):\n%s\nproblems: %v", d, rc.bad)
	}
	f := false
	left, _, err := db.Outbox().Find(t.Context(), appdb.OutboxFilter{Delivered: &f})
	if err != nil || len(left) != 0 {
		t.Errorf("undelivered after relay: %d, %v; want 0", len(left), err)
	}
	if n, _ := r.RelayOnce(t.Context()); n != 0 {
		t.Errorf("second RelayOnce claimed %d, want 0", n)
	}
}

// TestRelayRetries: a receiver that fails many times in a row gets
// immediate retries, then rescheduled ones; nothing is lost.
func TestRelayRetries(t *testing.T) {
	db, rc, srv, clk := setup(t, 7)
	want := addMessages(t, db, 4)
	reg := prometheus.NewRegistry()
	r := mustRelay(t, db.Outbox(), notify.Options{
		Webhook: &notify.Webhook{URL: srv.URL, Secret: secret}, Now: clk.Now, Registerer: reg,
		Tries: 2, RetryInitial: time.Millisecond, RescheduleInitial: time.Second, RescheduleMax: time.Minute,
	})
	var sawError bool
	for range 20 {
		if _, err := r.RelayOnce(t.Context()); err != nil {
			t.Fatalf("RelayOnce: %v", err)
		}
		ms, _, err := db.Outbox().Find(t.Context(), appdb.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.LastError != "" && m.DeliveredAt.IsZero() {
				sawError = true
				if !m.NextAttemptAt.After(clk.Now()) {
					t.Errorf("failed message %s due at %v, want after now %v", m.ID, m.NextAttemptAt, clk.Now())
				}
			}
		}
		clk.Add(2 * time.Minute)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if d := cmp.Diff(want, rc.got); d != "" || len(rc.bad) > 0 {
		t.Errorf("received (-want +got):\n%s\nproblems: %v", d, rc.bad)
	}
	if !sawError {
		t.Errorf("no failed attempt recorded, want LastError set while the receiver failed")
	}
	if rc.requests < 7+4 {
		t.Errorf("receiver saw %d requests, want at least %d", rc.requests, 7+4)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if counts["delivered"] != 4 || counts["failed"] == 0 {
		t.Errorf("deliveries metric %v, want delivered=4 and some failed", counts)
	}
}

// TestRelayPublishes: with a Publisher, every message also goes to the bus
// on its topic with its ID.
func TestRelayPublishes(t *testing.T) {
	db, _, _, clk := setup(t, 0)
	want := addMessages(t, db, 2)
	b := membus.New(membus.Options{})
	defer b.Close()
	if err := b.Initialize(t.Context(), "anomalies", "test"); err != nil {
		t.Fatal(err)
	}
	r := mustRelay(t, db.Outbox(), notify.Options{Publisher: b, Now: clk.Now})
	if _, err := r.RelayOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := b.Len("anomalies", "test"); got != len(want) {
		t.Errorf("bus holds %d messages, want %d", got, len(want))
	}
	var _ bus.Publisher = b
}

// TestRun: the long-running relay delivers what is due and stops on
// cancellation.
func TestRun(t *testing.T) {
	db, rc, srv, _ := setup(t, 0)
	want := addMessages(t, db, 5)
	// The store's clock is fixed in the past, so the messages are due.
	r := mustRelay(t, db.Outbox(), notify.Options{Webhook: &notify.Webhook{URL: srv.URL, Secret: secret}, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		n := len(rc.got)
		rc.mu.Unlock()
		if n == len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if d := cmp.Diff(want, rc.got); d != "" {
		t.Errorf("received (-want +got):\n%s", d)
	}
}

func mustRelay(t *testing.T, repo appdb.OutboxRepository, opts notify.Options) *notify.Relay {
	t.Helper()
	r, err := notify.NewRelay(repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
