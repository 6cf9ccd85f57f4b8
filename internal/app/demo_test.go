package app_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/config"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// syncBuffer is a strings.Builder safe for the demo's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunDemo runs the demo until it goes live: the banner shows the URL,
// the token and the faults, and the history is queryable.
func TestRunDemo(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := app.Open(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Bootstrap(t.Context(), adminSecret, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	token, err := a.AdminToken(t.Context(), "demo")
	if err != nil || token != adminSecret {
		t.Fatalf("AdminToken after Bootstrap: got %q, %v; want the bootstrap secret", token, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	from := time.Now().Add(-30 * time.Minute)
	sc := simulate.Scenario{Seed: 2, Devices: 2, Sensors: 3, Interval: 10 * time.Second, Start: from, Faults: 2}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	var history int64
	err = a.RunDemo(ctx, ln, app.DemoOptions{Scenario: sc, Token: token, Out: &out, Progress: func(p simulate.Progress) {
		if p.Live {
			history = p.Points
			cancel()
		}
	}})
	if err != nil {
		t.Fatalf("RunDemo: %v", err)
	}
	banner := out.String()
	for _, want := range []string{base, token, "curl", "dev-001", "history loaded"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if history < 2*3*170 {
		t.Errorf("history of %d points, want about 2 devices × 3 sensors × 180 readings", history)
	}

	// The server stopped with the demo; serve the same directory again to
	// read the history.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg.DataDir)
	got := query(t, s.url, url.Values{"measurement": {"env"}, "start": {from.Add(-time.Minute).Format(time.RFC3339)}})
	n := 0
	for _, ss := range got {
		n += len(ss)
	}
	if len(got) != 6 || int64(n) < history {
		t.Errorf("after the demo: %d series, %d points; want 6 series and at least %d points", len(got), n, history)
	}

}

// TestAdminTokenRecreated: when the admin-token file is gone, AdminToken
// creates a new admin token and writes it there.
func TestAdminTokenRecreated(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := app.Open(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Bootstrap(t.Context(), adminSecret, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg.DataDir, "admin-token")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	tok, err := a.AdminToken(t.Context(), "demo")
	if err != nil || !strings.HasPrefix(tok, "vgl_") || tok == adminSecret {
		t.Fatalf("AdminToken without file: got %q, %v; want a new vgl_ token", tok, err)
	}
	again, err := a.AdminToken(t.Context(), "demo")
	if err != nil || again != tok {
		t.Errorf("second AdminToken: got %q, %v; want %q from the file", again, err, tok)
	}
	toks, err := a.Tokens(t.Context())
	if err != nil || len(toks) != 2 {
		t.Errorf("tokens after recreation: %d, %v; want the bootstrap token and the new one", len(toks), err)
	}
}
