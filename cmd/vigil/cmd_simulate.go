package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-iot/vigil/internal/simulate"
)

// fleetFlags are the flags describing a simulated fleet, shared by simulate
// and demo.
type fleetFlags struct {
	devices, sensors int
	interval         time.Duration
	seed             uint64
	faults           int
	kinds            string
}

func (f *fleetFlags) register(fs *flag.FlagSet, devices, sensors, faults int) {
	fs.IntVar(&f.devices, "devices", devices, "number of devices (dev-001, dev-002, ...)")
	fs.IntVar(&f.sensors, "sensors", sensors, "sensors per device (temperature, humidity, power, pressure, co2, ...)")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "sampling interval of every device")
	fs.Uint64Var(&f.seed, "seed", 1, "seed: the same seed and --start give the same readings and faults")
	fs.IntVar(&f.faults, "faults", faults, "number of faults to inject in total (spikes, level shifts, drifts, stuck values, noise bursts, dropouts, ...)")
	fs.StringVar(&f.kinds, "fault-kinds", "", "comma-separated fault kinds to choose from (default all: "+kindList()+")")
}

func kindList() string {
	var ks []string
	for _, k := range simulate.Kinds() {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ",")
}

func (f *fleetFlags) scenario() (simulate.Scenario, error) {
	sc := simulate.Scenario{Seed: f.seed, Devices: f.devices, Sensors: f.sensors, Interval: f.interval, Faults: f.faults}
	if f.kinds != "" {
		for k := range strings.SplitSeq(f.kinds, ",") {
			k := simulate.Kind(strings.TrimSpace(k))
			if !k.Valid() {
				return sc, fmt.Errorf("--fault-kinds: unknown kind %q (valid: %s)", k, kindList())
			}
			sc.FaultKinds = append(sc.FaultKinds, k)
		}
	}
	return sc, nil
}

// parseStart reads --start: RFC 3339, or a negative duration relative to
// now ("-2h").
func parseStart(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--start %q: want RFC 3339 (2026-01-05T00:00:00Z) or a duration relative to now (-2h)", s)
	}
	return t, nil
}

func cmdSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff fleetFlags
	ff.register(fs, 10, 4, 5)
	var (
		url        = fs.String("url", "http://localhost:8086", "Vigil's HTTP address (ignored with --mqtt)")
		token      = fs.String("token", "", "write token (env: VIGIL_TOKEN)")
		tokenFile  = fs.String("token-file", "", "read the token from this file (e.g. vigil-data/admin-token)")
		mqttURL    = fs.String("mqtt", "", "send over MQTT to this broker instead of HTTP, e.g. tcp://localhost:1883 (one client per device)")
		mqttTopic  = fs.String("mqtt-topic", simulate.DefaultTopic, "MQTT topic template with one {device} level")
		startFlag  = fs.String("start", "", "time of the first readings: RFC 3339 or relative (-6h); default now − --duration")
		duration   = fs.Duration("duration", 0, "length of the history to send as fast as possible (default 1h, or 0 with --realtime)")
		realtime   = fs.Bool("realtime", false, "after the history, keep sending live readings at the sampling pace until interrupted")
		batch      = fs.Int("batch", 5000, "points per HTTP request while sending history")
		labelsFile = fs.String("labels", "", "write the injected faults as JSON to this file")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: vigil simulate [flags]

Simulates a fleet of IoT devices with realistic, correlated sensor signals
and labelled injected faults, and sends their readings to Vigil over HTTP
(InfluxDB line protocol) or MQTT. The same --seed and --start give the same
readings and faults. Examples:

  vigil simulate --token-file vigil-data/admin-token --duration 6h --faults 10 --labels faults.json
  vigil simulate --token $VIGIL_TOKEN --devices 100 --realtime
  vigil simulate --mqtt tcp://localhost:1883 --token $VIGIL_TOKEN --realtime

flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	secret, err := readToken(*token, *tokenFile)
	if err != nil {
		return err
	}
	sc, err := ff.scenario()
	if err != nil {
		return err
	}
	now := time.Now().Truncate(time.Second)
	dur := *duration
	if dur == 0 && !*realtime {
		dur = time.Hour
	}
	if dur < 0 {
		return fmt.Errorf("--duration %v: want a positive length", dur)
	}
	sc.Start = now.Add(-dur)
	if *startFlag != "" {
		if sc.Start, err = parseStart(*startFlag, now); err != nil {
			return err
		}
	}
	if *realtime {
		// The history runs from --start to now, then live; faults go into the
		// history, or into the first hour of live data when there is none.
		if dur > 0 {
			sc.FaultEnd = sc.Start.Add(dur)
		} else {
			sc.FaultStart, sc.FaultEnd = now, now.Add(time.Hour)
		}
	} else {
		sc.End = sc.Start.Add(dur)
		if sc.End.After(now.Add(time.Minute)) {
			return fmt.Errorf("--start %s + --duration %s ends %s from now: Vigil refuses readings more than 10m ahead of its clock; use --realtime to send them when they are due",
				sc.Start.Format(time.RFC3339), dur, sc.End.Sub(now).Round(time.Second))
		}
	}
	if now.Sub(sc.Start) > 24*time.Hour {
		fmt.Fprintf(stderr, "note: readings older than Vigil's out-of-order window (default 24h) are refused; start the server with a larger --out-of-order-window\n")
	}
	fleet, err := sc.Fleet()
	if err != nil {
		return err
	}
	labels := sc.Labels(fleet)
	if *labelsFile != "" {
		b, _ := json.MarshalIndent(labels, "", "  ")
		if err := os.WriteFile(*labelsFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write labels: %w", err)
		}
	}

	var (
		w      simulate.Writer
		target string
	)
	if *mqttURL != "" {
		pub := &simulate.MQTTPublisher{Broker: *mqttURL, Token: secret, Topic: *mqttTopic}
		defer pub.Close()
		var ids []string
		for _, d := range fleet.Devices() {
			ids = append(ids, d.ID)
		}
		fmt.Fprintf(stderr, "connecting %d devices to %s ...\n", len(ids), *mqttURL)
		if err := pub.Connect(ctx, ids); err != nil {
			return hint(err, *mqttURL)
		}
		w, target = pub, *mqttURL
	} else {
		w, target = &simulate.Sender{URL: *url, Org: "vigil", Bucket: "vigil", Token: secret}, *url
	}

	fmt.Fprintf(stderr, "simulating %d devices × %d sensors every %s from %s (seed %d, %d faults) to %s\n",
		sc.Devices, sc.Sensors, sc.Interval, sc.Start.UTC().Format(time.RFC3339), sc.Seed, len(labels.Faults), target)
	began := time.Now()
	lastReport, lastPoints, wasLive := began, int64(0), false
	p, err := fleet.Stream(ctx, w, simulate.StreamOptions{BatchSize: *batch, Live: *realtime, Progress: func(p simulate.Progress) {
		t := time.Now()
		if p.Live && !wasLive {
			wasLive = true
			fmt.Fprintf(stderr, "history sent: %d points in %s; now live (Ctrl-C to stop)\n", p.Points, t.Sub(began).Round(time.Millisecond))
		}
		every := 2 * time.Second
		if p.Live {
			every = 30 * time.Second
		}
		if dt := t.Sub(lastReport); dt >= every {
			fmt.Fprintf(stderr, "sent %d points (%.0f points/s), data at %s\n", p.Points,
				float64(p.Points-lastPoints)/dt.Seconds(), p.DataTime.Format(time.RFC3339))
			lastReport, lastPoints = t, p.Points
		}
	}})
	elapsed := time.Since(began)
	interrupted := errors.Is(err, context.Canceled)
	if err != nil && !interrupted {
		return hint(err, target)
	}
	state := "done"
	if interrupted || *realtime {
		state = "stopped"
	}
	fmt.Fprintf(stdout, "%s: sent %d points (%d readings) in %d requests in %s (%.0f points/s) to %s\n", state,
		p.Points, p.Readings, p.Writes, elapsed.Round(time.Millisecond), float64(p.Points)/max(elapsed.Seconds(), 1e-9), target)
	printFaults(stdout, labels.Faults)
	if *labelsFile != "" {
		fmt.Fprintf(stdout, "labels written to %s\n", *labelsFile)
	}
	return nil
}

func printFaults(w io.Writer, faults []simulate.Fault) {
	if len(faults) == 0 {
		fmt.Fprintln(w, "no faults injected")
		return
	}
	fmt.Fprintf(w, "injected faults (%d):\n", len(faults))
	fmt.Fprintf(w, "  %-10s %-18s %-14s %-24s %s\n", "DEVICE", "KIND", "SENSORS", "START", "END")
	for _, f := range faults {
		fmt.Fprintf(w, "  %-10s %-18s %-14s %-24s %s\n", f.Device, f.Kind, strings.Join(f.Sensors, ","),
			f.Start.UTC().Format(time.RFC3339), f.End.UTC().Format(time.RFC3339))
	}
}

// readToken returns the token from --token, --token-file or VIGIL_TOKEN.
func readToken(token, file string) (string, error) {
	if token != "" && file != "" {
		return "", errors.New("give --token or --token-file, not both")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if token == "" {
		token = os.Getenv("VIGIL_TOKEN")
	}
	if token == "" {
		return "", errors.New("a write token is needed: pass --token, --token-file (e.g. vigil-data/admin-token) or set VIGIL_TOKEN; create one with 'vigil token create --name simulator'")
	}
	return token, nil
}

// hint adds what to do next to a send error.
func hint(err error, target string) error {
	var se *simulate.StatusError
	var ne *net.OpError
	switch {
	case errors.Is(err, simulate.ErrUnauthorized):
		return fmt.Errorf("%w\n  → the token was refused: check --token / --token-file (it needs the write role; for MQTT the username is the device ID)", err)
	case errors.As(err, &se) && se.Code == 422:
		return fmt.Errorf("%w\n  → readings outside the server's accepted window: use a --start within its out-of-order window (default 24h) and not in the future", err)
	case errors.As(err, &se) && se.Code == 409:
		return fmt.Errorf("%w\n  → the server already holds different values at these times: use another --seed or --start, or a fresh data directory", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne):
		return fmt.Errorf("%w\n  → is Vigil running at %s? start it with 'vigil serve' (add --mqtt-listen :1883 for MQTT), or try 'vigil demo'", err, target)
	}
	return err
}
