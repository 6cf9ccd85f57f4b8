package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as `vigil serve` when this variable is set, so the
// kill -9 test can crash a real server process.
const childEnv = "VIGIL_TEST_SERVE_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		err := cmdServe(context.Background(), strings.Fields(args), os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testToken = "vgl_kill9-test-token-0123456789abcdef"

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=--data-dir "+dir+" --http-addr "+addr+" --log-level warn",
		"VIGIL_BOOTSTRAP_TOKEN="+testToken)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil serve on %s not ready after 60s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKill9MidIngest writes over HTTP while the server is killed with
// SIGKILL: every write that got its 204 is there after a restart.
func TestKill9MidIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	child := startChild(t, dir, addr)

	t0 := time.Now().Add(-30 * time.Minute).UnixMilli()
	acked := 0 // batches acknowledged with 204
	const perBatch = 500
	killAt := 40
	client := &http.Client{Timeout: 10 * time.Second}
	for b := 0; ; b++ {
		if b == killAt {
			// Kill while a write is in flight.
			go func() {
				time.Sleep(2 * time.Millisecond)
				child.Process.Signal(syscall.SIGKILL)
			}()
		}
		var body strings.Builder
		for i := range perBatch {
			n := b*perBatch + i
			fmt.Fprintf(&body, "k9,device=d%d v=%d %d\n", n%10, n, t0+int64(n))
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v2/write?precision=ms", strings.NewReader(body.String()))
		req.Header.Set("Authorization", "Token "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			break // the server is gone
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			if b >= killAt {
				break
			}
			t.Fatalf("batch %d: status %d", b, resp.StatusCode)
		}
		acked = b + 1
	}
	child.Wait()
	if acked < killAt {
		t.Fatalf("only %d batches acknowledged before the kill, want ≥ %d", acked, killAt)
	}

	startChild(t, dir, addr)
	q := url.Values{"measurement": {"k9"}, "start": {fmt.Sprint(t0/1000 - 1)}, "end": {fmt.Sprint(t0/1000 + 3600)}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/query?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Token "+testToken)
	req.Header.Set("Accept", "text/csv")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query: status %d", resp.StatusCode)
	}
	// CSV rows: measurement, tags, field, time, value. Value n was written
	// by device d(n%10).
	stored := map[int]bool{}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		n, err := strconv.Atoi(row[4])
		if err != nil || row[1] != fmt.Sprintf("device=d%d", n%10) {
			t.Fatalf("unexpected row %q", row)
		}
		stored[n] = true
	}
	for n := range acked * perBatch {
		if !stored[n] {
			t.Fatalf("after kill -9 and restart: acknowledged value %d (batch %d) is missing; %d of %d stored", n, n/perBatch, len(stored), acked*perBatch)
		}
	}
	t.Logf("acknowledged %d points before SIGKILL; %d stored after restart", acked*perBatch, len(stored))
}
