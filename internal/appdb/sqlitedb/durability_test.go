package sqlitedb_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/appdb/sqlitedb"
)

// childEnv, when set to a database path, makes the test binary the child of
// TestDurabilityKill instead of running tests.
const childEnv = "VIGIL_TEST_SQLITEDB_DURABILITY_CHILD"

// durabilityChild writes anomalies (every third one with an outbox message,
// in one transaction) to the database named by childEnv, printing "ack ID"
// after each write returns, until it is killed. It reports whether this
// process is the child.
func durabilityChild() bool {
	path := os.Getenv(childEnv)
	if path == "" {
		return false
	}
	ctx := context.Background()
	s, err := sqlitedb.Open(ctx, path, sqlitedb.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		a := appdb.Anomaly{
			ID: fmt.Sprintf("kill-%06d", i), Device: "dev-1", SeriesKey: "m,device=dev-1 v",
			Start: time.Now(), PeakScore: 0.9, Severity: appdb.SeverityCritical,
		}
		if i%3 == 0 {
			err = s.InTx(ctx, func(tx appdb.Tx) error {
				if _, err := tx.Anomalies().Create(ctx, a); err != nil {
					return err
				}
				_, err := tx.Outbox().Create(ctx, appdb.OutboxMessage{ID: "out-" + a.ID, Topic: "anomalies"})
				return err
			})
		} else {
			_, err = s.Anomalies().Create(ctx, a)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "create:", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "ack", a.ID)
		out.Flush() // the ack leaves the process only after the write returned
	}
}

// TestDurabilityKill kills (SIGKILL) a process in the middle of writing and
// checks that every write it acknowledged is in the reopened database.
func TestDurabilityKill(t *testing.T) {
	const acks = 150
	path := filepath.Join(t.TempDir(), "app.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	var acked []string
	sc := bufio.NewScanner(stdout)
	for len(acked) < acks && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait()
	if len(acked) < acks {
		t.Fatalf("child acknowledged %d writes before exiting, want %d; stderr: %s", len(acked), acks, stderr.String())
	}

	s, err := sqlitedb.Open(t.Context(), path, sqlitedb.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for i, id := range acked {
		if _, err := s.Anomalies().Get(t.Context(), id); err != nil {
			t.Errorf("acknowledged anomaly %s: %v", id, err)
		}
		if i%3 == 0 {
			if _, err := s.Outbox().Get(t.Context(), "out-"+id); err != nil {
				t.Errorf("acknowledged outbox message of %s: %v", id, err)
			}
		}
	}
}
