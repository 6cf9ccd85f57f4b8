package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// ErrUnauthorized is returned (wrapped) when the server or broker refuses
// the credentials: a missing, unknown or revoked token, or one without write
// access to the device.
var ErrUnauthorized = errors.New("credentials refused")

// Scenario describes a simulated fleet in a few numbers: what `vigil
// simulate` and `vigil demo` take on their command lines.
type Scenario struct {
	// Seed selects the devices, the signals and the faults.
	Seed uint64
	// Devices and Sensors per device (see NewDevices).
	Devices, Sensors int
	// Interval is the sampling interval of every device.
	Interval time.Duration
	// Start is the time of the first readings.
	Start time.Time
	// End bounds the readings; zero means open-ended (for a live run).
	End time.Time
	// Faults is the total number of faults to inject, spread over the
	// devices; FaultKinds restricts their kinds (all kinds when empty).
	Faults     int
	FaultKinds []Kind
	// FaultStart and FaultEnd bound the period the faults are placed in;
	// zero values mean Start and End.
	FaultStart, FaultEnd time.Time
}

// openEnd is how far an open-ended scenario runs.
const openEnd = 100 * 365 * 24 * time.Hour

// Fleet builds the scenario's fleet. The same Scenario gives the same
// readings and faults. Errors wrap ErrInvalid.
func (s Scenario) Fleet() (*Fleet, error) {
	if s.Devices <= 0 || s.Sensors <= 0 {
		return nil, fmt.Errorf("scenario: %w: %d devices × %d sensors, want at least 1 × 1", ErrInvalid, s.Devices, s.Sensors)
	}
	if s.Interval < 10*time.Millisecond {
		return nil, fmt.Errorf("scenario: %w: interval %v below 10ms", ErrInvalid, s.Interval)
	}
	end := s.End
	if end.IsZero() {
		end = s.Start.Add(openEnd)
	}
	devs := NewDevices(s.Seed, s.Devices, s.Sensors, s.Interval)
	faults, err := s.planFaults(devs, end)
	if err != nil {
		return nil, err
	}
	return NewFleet(Config{Seed: s.Seed, Start: s.Start, End: end, Devices: devs, Faults: faults})
}

// planFaults draws s.Faults faults in total over devs.
func (s Scenario) planFaults(devs []Device, end time.Time) ([]Fault, error) {
	if s.Faults <= 0 {
		return nil, nil
	}
	fs, fe := s.FaultStart, s.FaultEnd
	if fs.IsZero() {
		fs = s.Start
	}
	if fe.IsZero() {
		fe = end
	}
	if !fe.After(fs) {
		return nil, fmt.Errorf("scenario: %w: fault period [%v, %v) is empty", ErrInvalid, fs, fe)
	}
	perDev := (s.Faults + len(devs) - 1) / len(devs)
	faults, err := PlanFaults(s.Seed, devs, fs, fe, perDev, s.FaultKinds)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w: %w", ErrInvalid, err)
	}
	if len(faults) > s.Faults {
		// Keep s.Faults of them, drawn at random but covering as many kinds
		// as possible.
		rng := rand.New(rand.NewPCG(s.Seed, 0x243f6a8885a308d3))
		rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
		kept := make([]Fault, 0, s.Faults)
		for len(kept) < s.Faults {
			seen := map[Kind]bool{}
			rest := faults[:0]
			for _, f := range faults {
				if len(kept) < s.Faults && !seen[f.Kind] {
					seen[f.Kind] = true
					kept = append(kept, f)
				} else {
					rest = append(rest, f)
				}
			}
			faults = rest
		}
		faults = kept
	}
	slices.SortStableFunc(faults, func(a, b Fault) int { return a.Start.Compare(b.Start) })
	return faults, nil
}

// FaultLabels is the JSON document `vigil simulate --labels FILE` writes: the
// faults a run injected, to compare with the anomalies Vigil found.
type FaultLabels struct {
	Version  int       `json:"version"`
	Seed     uint64    `json:"seed"`
	Devices  int       `json:"devices"`
	Sensors  int       `json:"sensors"`
	Interval string    `json:"interval"`
	Start    time.Time `json:"start"`
	// End is absent for an open-ended (live) run.
	End    *time.Time `json:"end,omitempty"`
	Faults []Fault    `json:"faults"`
}

// Labels returns the fault labels of the scenario's fleet f.
func (s Scenario) Labels(f *Fleet) FaultLabels {
	l := FaultLabels{Version: 1, Seed: s.Seed, Devices: s.Devices, Sensors: s.Sensors, Interval: s.Interval.String(),
		Start: s.Start.UTC(), Faults: f.Faults()}
	if l.Faults == nil {
		l.Faults = []Fault{}
	}
	if !s.End.IsZero() {
		e := s.End.UTC()
		l.End = &e
	}
	return l
}

// Writer delivers points to a server. Write returns once the server has
// acknowledged them (stored durably); on error none or some may be stored,
// and writing the same points again is safe (writes are idempotent).
type Writer interface {
	Write(ctx context.Context, pts []telemetry.Point) error
}

// StreamOptions configure Fleet.Stream.
type StreamOptions struct {
	// BatchSize is the number of points per Write while backfilling; 0
	// means 5000. A device's reading is never split.
	BatchSize int
	// Live keeps going after the backfill: each reading is sent when the
	// clock reaches its time, until ctx is cancelled.
	Live bool
	// FlushEvery is the shortest time between two live writes; 0 means 1s.
	FlushEvery time.Duration
	// Now is the clock deciding what is past (backfill) and what is live.
	// Nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called after every write, and once more when
	// the backfill is done and Stream goes live.
	Progress func(Progress)
}

// Progress counts what a Stream has sent so far.
type Progress struct {
	// Points and Readings acknowledged by the server, in Writes requests.
	Points, Readings, Writes int64
	// DataTime is the time of the last reading sent.
	DataTime time.Time
	// Live is true once the backfill is done and readings go out at their
	// time.
	Live bool
}

// Stream sends the fleet's readings through w, in time order: the readings
// up to now as fast as w takes them (the backfill), then, with
// opts.Live, each later reading at its time. Without Live every reading is
// sent at once, even future ones. In live mode cancelling ctx is the way to
// stop, and Stream then returns nil; otherwise a cancelled ctx is an error.
// The returned Progress counts what the server acknowledged.
func (f *Fleet) Stream(ctx context.Context, w Writer, opts StreamOptions) (Progress, error) {
	size := opts.BatchSize
	if size <= 0 {
		size = 5000
	}
	every := opts.FlushEvery
	if every <= 0 {
		every = time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	idx := make(map[string]int, len(f.cfg.Devices))
	for i, d := range f.cfg.Devices {
		idx[d.ID] = i
	}
	var (
		p         Progress
		batch     = make([]telemetry.Point, 0, size+64)
		readings  int64
		lastTime  int64
		lastFlush time.Time
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.Write(ctx, batch); err != nil {
			return fmt.Errorf("stream: write %d points after %d: %w", len(batch), p.Points, err)
		}
		p.Points += int64(len(batch))
		p.Readings += readings
		p.Writes++
		p.DataTime = telemetry.FromMillis(lastTime)
		batch, readings = batch[:0], 0
		lastFlush = now()
		if opts.Progress != nil {
			opts.Progress(p)
		}
		return nil
	}
	stopped := func(err error) (Progress, error) {
		if opts.Live && ctx.Err() != nil {
			return p, nil
		}
		return p, err
	}
	for r := range f.Readings() {
		if opts.Live && r.Time > now().UnixMilli() {
			if err := flush(); err != nil {
				return stopped(err)
			}
			if !p.Live {
				p.Live = true
				if opts.Progress != nil {
					opts.Progress(p) // the backfill is done
				}
			}
			wake := telemetry.FromMillis(r.Time)
			if next := lastFlush.Add(every); next.After(wake) {
				wake = next
			}
			if err := sleepUntil(ctx, now, wake); err != nil {
				return stopped(fmt.Errorf("stream: %w", err))
			}
		} else if len(batch) >= size {
			if err := flush(); err != nil {
				return stopped(err)
			}
		}
		di := idx[r.Device]
		for _, fl := range r.Fields {
			batch = append(batch, telemetry.Point{Series: f.series[di][f.sensorIndex(di, fl.Name)], Time: r.Time, Value: fl.Value})
		}
		readings++
		lastTime = r.Time
	}
	if err := flush(); err != nil {
		return stopped(err)
	}
	return p, ctx.Err()
}

// sleepUntil waits until the clock reads t, or ctx is done.
func sleepUntil(ctx context.Context, now func() time.Time, t time.Time) error {
	d := t.Sub(now())
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// StatusError is a write the server answered with a status other than 2xx.
// It matches ErrRejected for a client error other than 429, and
// ErrUnauthorized for 401 and 403.
type StatusError struct {
	// Code is the HTTP status code; Message the start of the answer's body.
	Code    int
	Message string
}

// Error describes the answer.
func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Is matches ErrRejected and ErrUnauthorized as documented on StatusError.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrRejected:
		return e.Code/100 == 4 && e.Code != http.StatusTooManyRequests
	case ErrUnauthorized:
		return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
	}
	return false
}

// Write posts pts as one line protocol request (millisecond precision) and
// returns when the server acknowledged it, retrying answers 429 and 503 as
// Send does. A refusal is a *StatusError. Write makes Sender a Writer.
func (s *Sender) Write(ctx context.Context, pts []telemetry.Point) error {
	endpoint, err := s.endpoint()
	if err != nil {
		return err
	}
	body, err := telemetry.AppendPoints(nil, pts, telemetry.Millisecond)
	if err != nil {
		return fmt.Errorf("encode points: %w", err)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries := s.MaxRetries
	if retries <= 0 {
		retries = 5
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("post %s: %w", endpoint, err)
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if s.Token != "" {
			req.Header.Set("Authorization", "Token "+s.Token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("post %s: %w", endpoint, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < retries {
			wait := time.Second
			if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec >= 0 {
				wait = time.Duration(sec) * time.Second
			}
			if err := sleepUntil(ctx, time.Now, time.Now().Add(wait)); err != nil {
				return fmt.Errorf("post %s: %w", endpoint, err)
			}
			continue
		}
		return fmt.Errorf("post %s: %w", endpoint, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(msg))})
	}
}
