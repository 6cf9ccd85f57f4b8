package simulate

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// writeServer is a real HTTP server that decodes line protocol bodies.
type writeServer struct {
	mu       sync.Mutex
	points   []telemetry.Point
	requests int
	fail     int // answer the next fail requests 429
	status   int // when not 0, answer every request with it
}

func (ws *writeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.requests++
	q := r.URL.Query()
	if r.URL.Path != "/api/v2/write" || q.Get("org") != "o" || q.Get("bucket") != "b" || q.Get("precision") != "ms" || r.Header.Get("Authorization") != "Token secret" {
		http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	if ws.status != 0 {
		http.Error(w, "nope", ws.status)
		return
	}
	if ws.fail > 0 {
		ws.fail--
		w.Header().Set("Retry-After", "0")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	dec := telemetry.NewDecoder(r.Body, telemetry.LineOptions{Precision: telemetry.Millisecond})
	for {
		res, err := dec.Next(nil, 1000)
		if res.Rejected > 0 {
			http.Error(w, res.Errors.Error(), http.StatusBadRequest)
			return
		}
		ws.points = append(ws.points, res.Points...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestSender(t *testing.T) {
	fl, err := NewFleet(Config{Seed: 1, Start: start, End: start.Add(2 * time.Hour), Devices: NewDevices(1, 3, 4, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Collect(fl.Points())
	ws := &writeServer{fail: 2}
	srv := httptest.NewServer(ws)
	defer srv.Close()
	s := &Sender{URL: srv.URL, Org: "o", Bucket: "b", Token: "secret", Client: srv.Client(), BatchSize: 500}
	n, err := s.Send(t.Context(), fl.Points())
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(ws.points) != len(want) {
		t.Fatalf("sent %d, server got %d, want %d", n, len(ws.points), len(want))
	}
	for i, p := range ws.points {
		if p.Series.Key() != want[i].Series.Key() || p.Time != want[i].Time || p.Value != want[i].Value {
			t.Fatalf("point %d: got %s %d %v, want %s %d %v", i, p.Series.Key(), p.Time, p.Value, want[i].Series.Key(), want[i].Time, want[i].Value)
		}
	}
	if min := (len(want)+499)/500 + 2; ws.requests < min {
		t.Errorf("%d requests, want at least %d (batches of 500 and 2 retries)", ws.requests, min)
	}

	t.Run("rejected", func(t *testing.T) {
		ws := &writeServer{status: http.StatusBadRequest}
		srv := httptest.NewServer(ws)
		defer srv.Close()
		s := &Sender{URL: srv.URL, Org: "o", Bucket: "b", Token: "secret", Client: srv.Client()}
		if _, err := s.Send(t.Context(), fl.Points()); !errors.Is(err, ErrRejected) {
			t.Errorf("400 answer: got %v, want ErrRejected", err)
		}
	})
	t.Run("bad url", func(t *testing.T) {
		s := &Sender{URL: "localhost:8080"}
		if _, err := s.Send(t.Context(), fl.Points()); !errors.Is(err, ErrInvalid) {
			t.Errorf("url without scheme: got %v, want ErrInvalid", err)
		}
	})
}
