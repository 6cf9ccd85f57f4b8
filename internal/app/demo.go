package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/run"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/simulate"
)

// RunBackground runs a.Run(ctx, ln) in a goroutine and returns a function
// that waits for it to return (after ctx is cancelled) and gives its error.
// For commands and tests that drive an in-process server.
func (a *App) RunBackground(ctx context.Context, ln net.Listener) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	var (
		err  error
		over bool
	)
	return func() error {
		if !over {
			err, over = <-done, true
		}
		return err
	}
}

// AdminToken returns the admin token that Bootstrap wrote to
// <data-dir>/admin-token. When that file is gone (the token was shown once
// and the file deleted) it creates a new admin token named name and writes
// it there.
func (a *App) AdminToken(ctx context.Context, name string) (string, error) {
	file := filepath.Join(a.cfg.DataDir, adminTokenFileName)
	b, err := os.ReadFile(file)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token %s: %w", file, err)
	}
	_, secret, err := a.CreateToken(ctx, name, appdb.RoleAdmin, "")
	if err != nil {
		return "", err
	}
	if err := writeSecretFile(file, secret); err != nil {
		return "", err
	}
	return secret, nil
}

// DemoOptions configure RunDemo.
type DemoOptions struct {
	// Scenario is the simulated fleet; its Start is the start of the
	// history, its End is ignored (the demo runs until stopped).
	Scenario simulate.Scenario
	// Token is the admin token the simulator writes with and the banner
	// shows.
	Token string
	// Out receives the banner: URL, token, example commands, faults.
	Out io.Writer
	// Progress, when set, is called after each write of the simulator.
	Progress func(simulate.Progress)
}

// RunDemo serves the API on ln (as Run does) and feeds it a simulated
// fleet over HTTP: first the history from opts.Scenario.Start to now, as
// fast as the server takes it, then live readings at the sampling pace,
// until ctx is cancelled. A simulator failure is logged; the server keeps
// running.
func (a *App) RunDemo(ctx context.Context, ln net.Listener, opts DemoOptions) error {
	sc := opts.Scenario
	sc.End = time.Time{}
	if sc.FaultEnd.IsZero() {
		sc.FaultEnd = a.opts.Now()
	}
	fleet, err := sc.Fleet()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	base := baseURL(ln.Addr())
	log := a.opts.Logger.With("component", "demo")
	var g run.Group
	{
		sctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return a.Run(sctx, ln) }, func(error) { cancel() })
	}
	{
		sctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			if err := waitReady(sctx, base); err != nil {
				return nil // stopped before the server came up
			}
			printBanner(opts.Out, base, opts.Token, fleet)
			sender := &simulate.Sender{URL: base, Org: "demo", Bucket: "demo", Token: opts.Token}
			started, live := time.Now(), false
			_, err := fleet.Stream(sctx, sender, simulate.StreamOptions{Live: true, Now: a.opts.Now, Progress: func(p simulate.Progress) {
				if p.Live && !live {
					live = true
					fmt.Fprintf(opts.Out, "history loaded: %d points in %s; now sending live readings every %s (Ctrl-C to stop)\n",
						p.Points, time.Since(started).Round(time.Millisecond), sc.Interval)
				}
				if opts.Progress != nil {
					opts.Progress(p)
				}
			}})
			if err != nil {
				log.Error("demo simulator stopped; the server keeps running", "err", err)
				<-sctx.Done()
			}
			return nil
		}, func(error) { cancel() })
	}
	return g.Run()
}

// baseURL is the URL a local client reaches the listener at.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// waitReady polls base/ping until it answers or ctx ends.
func waitReady(ctx context.Context, base string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ping", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func printBanner(w io.Writer, base, token string, fleet *simulate.Fleet) {
	devs := fleet.Devices()
	dev, field := devs[0].ID, devs[0].Sensors[0].Name
	fmt.Fprintf(w, `
Vigil demo is running at %[1]s
Admin token: %[2]s

Try:
  export VIGIL_TOKEN=%[2]s
  curl -s -H "Authorization: Token $VIGIL_TOKEN" '%[1]s/api/v1/devices'
  curl -s -H "Authorization: Token $VIGIL_TOKEN" '%[1]s/api/v1/last?device=%[3]s'
  curl -s -H "Authorization: Token $VIGIL_TOKEN" '%[1]s/api/v1/query?measurement=%[5]s&device=%[3]s&field=%[4]s&start=-1h'
  curl -s -H "Authorization: Token $VIGIL_TOKEN" -XPOST '%[1]s/api/v2/write?bucket=demo&precision=s' \
       --data-binary "env,device=my-sensor temperature=21.5 $(date +%%s)"

Simulating %[6]d devices; injected faults (the anomalies to find):
`, base, token, dev, field, simulate.DefaultMeasurement, len(devs))
	faults := fleet.Faults()
	if len(faults) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, f := range faults {
		fmt.Fprintf(w, "  %-8s %-18s %-12s %s → %s\n", f.Device, f.Kind, strings.Join(f.Sensors, ","),
			f.Start.UTC().Format(time.RFC3339), f.End.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
}
