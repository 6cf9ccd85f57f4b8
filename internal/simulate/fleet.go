package simulate

import (
	"container/heap"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
)

// ErrInvalid is returned (wrapped) for an invalid fleet configuration.
var ErrInvalid = errors.New("invalid simulation config")

// DefaultMeasurement is the measurement of a Device that names none.
const DefaultMeasurement = "env"

// Device is one simulated device: its sensors and how it samples them. A
// device reports all its sensors at once, in one reading per tick.
type Device struct {
	// ID is the value of the device tag; unique within a fleet.
	ID string `json:"id"`
	// Measurement of the device's series; DefaultMeasurement when empty.
	Measurement string `json:"measurement,omitempty"`
	// Tags are extra tags of the device's series (the device tag is added).
	Tags telemetry.Tags `json:"tags,omitempty"`
	// Sensors are the device's sensors; names are unique.
	Sensors []Sensor `json:"sensors"`
	// Interval is the nominal time between readings (at least 10ms).
	Interval time.Duration `json:"interval"`
	// Jitter is the spread of actual reading times around the nominal
	// schedule, as a fraction of Interval in [0, 0.8).
	Jitter float64 `json:"jitter"`
	// GapRate is the probability that a reading is lost; a lost reading
	// starts a short outage (2 to 11 readings) once in 25 losses.
	GapRate float64 `json:"gap_rate"`
}

func (d Device) interval() time.Duration { return d.Interval }

func (d Device) measurement() string {
	if d.Measurement == "" {
		return DefaultMeasurement
	}
	return d.Measurement
}

// Config describes a simulation: which devices, which period, which faults.
type Config struct {
	// Seed selects the random signals; the same Config gives the same
	// readings.
	Seed uint64
	// Start and End bound the simulated period [Start, End).
	Start, End time.Time
	Devices    []Device
	// Faults to inject, for example from PlanFaults.
	Faults []Fault
}

// Reading is one report of one device: the values of its sensors at one
// time. Sensors in a dropout are missing from Fields.
type Reading struct {
	Device string
	// Time is the reading's timestamp in Unix milliseconds.
	Time   int64
	Fields []Field
}

// Field is one sensor's value in a Reading.
type Field struct {
	Name  string
	Value float64
}

// Fleet generates the readings of a set of devices. It is immutable: each
// iteration over Readings or Points starts again from Start and yields the
// same sequence. It is safe for concurrent use.
type Fleet struct {
	cfg    Config
	faults []Fault
	series [][]telemetry.Series // per device, per sensor
}

// NewDevices returns n devices ("dev-001", ...) with m sensors each, taken
// from the Catalogue in order (wrapping around, with numbered names when
// m exceeds it), sampled every interval with 10% jitter and 0.2% lost
// readings, spread over sites "site-1" to "site-4". Sensor levels vary a
// little between devices, as seeded by seed.
func NewDevices(seed uint64, n, m int, interval time.Duration) []Device {
	cat := Catalogue()
	rng := rand.New(rand.NewPCG(seed, 0xd1b54a32d192ed03))
	out := make([]Device, n)
	for i := range out {
		d := Device{
			ID:       fmt.Sprintf("dev-%03d", i+1),
			Tags:     telemetry.Tags{{Key: "site", Value: fmt.Sprintf("site-%d", i%4+1)}},
			Interval: interval,
			Jitter:   0.1,
			GapRate:  0.002,
		}
		for j := range m {
			s := cat[j%len(cat)]
			if j >= len(cat) {
				s.Name = fmt.Sprintf("%s_%d", s.Name, j/len(cat)+1)
			}
			s.Base += s.Scale() * rng.NormFloat64()
			s.Daily *= 0.8 + 0.4*rng.Float64()
			s.Load *= 0.8 + 0.4*rng.Float64()
			d.Sensors = append(d.Sensors, s)
		}
		out[i] = d
	}
	return out
}

// NewFleet validates cfg and returns its Fleet. Errors wrap ErrInvalid.
func NewFleet(cfg Config) (*Fleet, error) {
	var errs []error
	if !cfg.End.After(cfg.Start) {
		errs = append(errs, fmt.Errorf("end %v not after start %v", cfg.End, cfg.Start))
	}
	ids := map[string]map[string]bool{}
	series := make([][]telemetry.Series, len(cfg.Devices))
	for i, d := range cfg.Devices {
		if d.ID == "" {
			errs = append(errs, fmt.Errorf("device %d: empty id", i))
		}
		if ids[d.ID] != nil {
			errs = append(errs, fmt.Errorf("device %d: duplicate id %q", i, d.ID))
		}
		if d.Interval < 10*time.Millisecond {
			errs = append(errs, fmt.Errorf("device %q: interval %v below 10ms", d.ID, d.Interval))
		}
		if d.Jitter < 0 || d.Jitter >= 0.8 {
			errs = append(errs, fmt.Errorf("device %q: jitter %v outside [0, 0.8)", d.ID, d.Jitter))
		}
		if d.GapRate < 0 || d.GapRate >= 1 {
			errs = append(errs, fmt.Errorf("device %q: gap rate %v outside [0, 1)", d.ID, d.GapRate))
		}
		if len(d.Sensors) == 0 {
			errs = append(errs, fmt.Errorf("device %q: no sensors", d.ID))
		}
		names := map[string]bool{}
		tags := append(slices.Clone(d.Tags), telemetry.Tag{Key: telemetry.DeviceTag, Value: d.ID})
		for _, s := range d.Sensors {
			if s.Name == "" || names[s.Name] {
				errs = append(errs, fmt.Errorf("device %q: empty or duplicate sensor name %q", d.ID, s.Name))
			}
			names[s.Name] = true
			series[i] = append(series[i], telemetry.NewSeries(d.measurement(), tags, s.Name))
		}
		ids[d.ID] = names
	}
	faults := slices.Clone(cfg.Faults)
	for i, f := range faults {
		if !f.Kind.Valid() {
			errs = append(errs, fmt.Errorf("fault %d: unknown kind %q", i, f.Kind))
		}
		if !f.End.After(f.Start) {
			errs = append(errs, fmt.Errorf("fault %d: end %v not after start %v", i, f.End, f.Start))
		}
		names, ok := ids[f.Device]
		if !ok {
			errs = append(errs, fmt.Errorf("fault %d: unknown device %q", i, f.Device))
			continue
		}
		if len(f.Sensors) == 0 {
			errs = append(errs, fmt.Errorf("fault %d: no sensors", i))
		}
		for _, s := range f.Sensors {
			if !names[s] {
				errs = append(errs, fmt.Errorf("fault %d: device %q has no sensor %q", i, f.Device, s))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new fleet: %w: %w", ErrInvalid, err)
	}
	slices.SortStableFunc(faults, func(a, b Fault) int { return a.Start.Compare(b.Start) })
	cfg.Devices = slices.Clone(cfg.Devices)
	cfg.Faults = faults
	return &Fleet{cfg: cfg, faults: faults, series: series}, nil
}

// Faults returns the injected faults — the labels — sorted by start.
func (f *Fleet) Faults() []Fault { return slices.Clone(f.faults) }

// Devices returns the fleet's devices.
func (f *Fleet) Devices() []Device { return slices.Clone(f.cfg.Devices) }

// Readings yields every reading of every device in [Start, End), in time
// order (readings at the same millisecond in device order).
func (f *Fleet) Readings() iter.Seq[Reading] {
	return func(yield func(Reading) bool) {
		h := make(devHeap, 0, len(f.cfg.Devices))
		for i := range f.cfg.Devices {
			st := newDevState(f.cfg, i)
			if st.advance() {
				h = append(h, st)
			}
		}
		heap.Init(&h)
		for len(h) > 0 {
			st := h[0]
			if !yield(st.next) {
				return
			}
			if st.advance() {
				heap.Fix(&h, 0)
			} else {
				heap.Pop(&h)
			}
		}
	}
}

// Points yields the readings as points, one per sensor value, in time order.
func (f *Fleet) Points() iter.Seq[telemetry.Point] {
	return func(yield func(telemetry.Point) bool) {
		idx := make(map[string]int, len(f.cfg.Devices))
		for i, d := range f.cfg.Devices {
			idx[d.ID] = i
		}
		for r := range f.Readings() {
			di := idx[r.Device]
			for _, fl := range r.Fields {
				j := f.sensorIndex(di, fl.Name)
				if !yield(telemetry.Point{Series: f.series[di][j], Time: r.Time, Value: fl.Value}) {
					return
				}
			}
		}
	}
}

func (f *Fleet) sensorIndex(di int, name string) int {
	for j, s := range f.cfg.Devices[di].Sensors {
		if s.Name == name {
			return j
		}
	}
	return -1
}

// devHeap orders device states by the time of their next reading.
type devHeap []*devState

func (h devHeap) Len() int { return len(h) }
func (h devHeap) Less(i, j int) bool {
	if h[i].next.Time != h[j].next.Time {
		return h[i].next.Time < h[j].next.Time
	}
	return h[i].idx < h[j].idx
}
func (h devHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *devHeap) Push(x any)   { *h = append(*h, x.(*devState)) }
func (h *devHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

const (
	hourMs       = 3_600_000.0
	dayMs        = 24 * hourMs
	weatherTauMs = 8 * hourMs
	loadTauMs    = 0.5 * hourMs
)

// devFault is a fault resolved against one device.
type devFault struct {
	kind       Kind
	start, end int64
	mag        float64
	mask       []bool // per sensor
	stuck      []float64
	stuckSet   []bool
}

func (f *devFault) active(t int64) bool { return t >= f.start && t < f.end }

// devState is the running state of one device during an iteration.
type devState struct {
	d          Device
	idx        int
	rng        *rand.Rand
	start, end int64
	iv, phase  int64
	k          int64
	tz         float64 // local time offset, hours
	drift      []float64
	faults     []*devFault

	lastT               int64
	weather, weatherAlt float64
	loadAR, loadARAlt   float64
	outage              int
	noise, burst        []float64
	scale               []float64 // per sensor, Sensor.Scale
	next                Reading

	drvT              int64 // time of the cached drivers
	drvOK             bool
	drvDaily, drvLoad float64
}

func newDevState(cfg Config, i int) *devState {
	d := cfg.Devices[i]
	st := &devState{
		d:     d,
		idx:   i,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc909+uint64(i))),
		start: cfg.Start.UnixMilli(),
		end:   cfg.End.UnixMilli(),
		iv:    d.Interval.Milliseconds(),
		noise: make([]float64, len(d.Sensors)),
		burst: make([]float64, len(d.Sensors)),
	}
	st.phase = int64(st.rng.Float64() * float64(st.iv))
	st.tz = 3 * (st.rng.Float64() - 0.5)
	st.weather, st.weatherAlt = st.rng.NormFloat64(), st.rng.NormFloat64()
	st.loadAR, st.loadARAlt = st.rng.NormFloat64(), st.rng.NormFloat64()
	st.drift = make([]float64, len(d.Sensors))
	st.scale = make([]float64, len(d.Sensors))
	for j, s := range d.Sensors {
		st.drift[j] = s.DriftPerDay * st.rng.NormFloat64() / dayMs
		st.scale[j] = s.Scale()
	}
	st.lastT = st.start
	for _, f := range cfg.Faults {
		if f.Device != d.ID {
			continue
		}
		df := &devFault{
			kind: f.Kind, start: f.Start.UnixMilli(), end: f.End.UnixMilli(), mag: f.magnitude(),
			mask: make([]bool, len(d.Sensors)), stuck: make([]float64, len(d.Sensors)), stuckSet: make([]bool, len(d.Sensors)),
		}
		for j, s := range d.Sensors {
			df.mask[j] = slices.Contains(f.Sensors, s.Name)
		}
		st.faults = append(st.faults, df)
	}
	return st
}

// ar advances a unit-variance Ornstein-Uhlenbeck process by dt.
func ar(x, dt, tau, n float64) float64 {
	a := math.Exp(-dt / tau)
	return a*x + math.Sqrt(1-a*a)*n
}

// advance computes the device's next reading into st.next; false when the
// device has no more readings before End.
func (st *devState) advance() bool {
	for {
		nominal := st.start + st.phase + st.k*st.iv
		st.k++
		if nominal >= st.end+st.iv {
			return false
		}
		// Draw the same random numbers on every tick whatever happens, so
		// that faults and gaps change nothing outside themselves.
		jit := (st.rng.Float64() - 0.5) * st.d.Jitter
		gapU, outU, outN := st.rng.Float64(), st.rng.Float64(), st.rng.IntN(10)
		nw, nwa, nl, nla := st.rng.NormFloat64(), st.rng.NormFloat64(), st.rng.NormFloat64(), st.rng.NormFloat64()
		for j := range st.d.Sensors {
			st.noise[j], st.burst[j] = st.rng.NormFloat64(), st.rng.NormFloat64()
		}
		t := nominal + int64(jit*float64(st.iv))
		if t <= st.lastT && st.k > 1 {
			t = st.lastT + 1
		}
		dt := float64(max(t-st.lastT, 0))
		st.weather = ar(st.weather, dt, weatherTauMs, nw)
		st.weatherAlt = ar(st.weatherAlt, dt, weatherTauMs, nwa)
		st.loadAR = ar(st.loadAR, dt, loadTauMs, nl)
		st.loadARAlt = ar(st.loadARAlt, dt, loadTauMs, nla)
		st.lastT = t
		if t < st.start {
			continue
		}
		if t >= st.end {
			return false
		}
		lost := false
		switch {
		case st.outage > 0:
			st.outage--
			lost = true
		case gapU < st.d.GapRate:
			lost = true
			if outU < 1.0/25 {
				st.outage = 1 + outN
			}
		}
		if lost {
			continue
		}
		if r, ok := st.reading(t); ok {
			st.next = r
			return true
		}
	}
}

// reading computes the device's reading at t; false when every sensor is in
// a dropout.
func (st *devState) reading(t int64) (Reading, bool) {
	fields := make([]Field, 0, len(st.d.Sensors))
	for j, s := range st.d.Sensors {
		tt := t
		w, l := st.weather, st.loadAR
		var offset, extra float64
		dropped := false
		var stuck *devFault
		for _, f := range st.faults {
			if !f.mask[j] || t < f.start {
				continue
			}
			in := f.active(t)
			switch f.kind {
			case Spike:
				if in {
					offset += f.mag * st.scale[j]
				}
			case LevelShift:
				offset += f.mag * st.scale[j]
			case Drift:
				frac := min(1, float64(t-f.start)/float64(f.end-f.start))
				offset += frac * f.mag * st.scale[j]
			case NoiseBurst:
				if in {
					extra += f.mag * st.scale[j] * st.burst[j]
				}
			case SeasonalBreak:
				if in {
					tt += int64(f.mag * hourMs)
				}
			case CorrelationBreak:
				if in {
					w, l = st.weatherAlt, st.loadARAlt
				}
			case Stuck:
				if in {
					stuck = f
				}
			case Dropout:
				if in {
					dropped = true
				}
			}
		}
		daily, sched := st.drivers(tt)
		load := min(max(sched*(1+0.2*l)+0.03*l, 0), 1)
		v := s.Base + s.Daily*daily + s.Weather*w + s.Load*load +
			st.drift[j]*float64(t-st.start) + s.Noise*st.noise[j] + offset + extra
		v = s.quantise(v)
		if stuck != nil {
			if !stuck.stuckSet[j] {
				stuck.stuck[j], stuck.stuckSet[j] = v, true
			}
			v = stuck.stuck[j]
		}
		if !dropped {
			fields = append(fields, Field{Name: s.Name, Value: v})
		}
	}
	if len(fields) == 0 {
		return Reading{}, false
	}
	return Reading{Device: st.d.ID, Time: t, Fields: fields}, true
}

// drivers returns the daily ambient cycle and the nominal load at time t
// (Unix ms), cached for the last t asked.
func (st *devState) drivers(t int64) (daily, load float64) {
	if t == st.drvT && st.drvOK {
		return st.drvDaily, st.drvLoad
	}
	h := math.Mod(float64(t)/hourMs+st.tz, 24)
	if h < 0 {
		h += 24
	}
	day := int64(math.Floor((float64(t)/hourMs + st.tz) / 24))
	weekday := (day%7 + 7 + 4) % 7 // 1970-01-01 was a Thursday; 0 = Sunday
	daily, load = dailyShape(h), schedule(h, weekday == 0 || weekday == 6)
	st.drvT, st.drvOK, st.drvDaily, st.drvLoad = t, true, daily, load
	return daily, load
}

// dailyShape is the daily ambient cycle at local hour h: warmest mid
// afternoon, coolest before dawn, in about [-1.2, 1.2].
func dailyShape(h float64) float64 {
	x := 2 * math.Pi * (h - 15) / 24
	return math.Cos(x) + 0.2*math.Cos(2*x)
}

// schedule is the nominal load at local hour h: business hours 8 to 18, much
// lower on weekends.
func schedule(h float64, weekend bool) float64 {
	on := sigmoid((h-8)/0.3) * sigmoid((18-h)/0.3)
	if weekend {
		on *= 0.3
	}
	return 0.1 + 0.8*on
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
