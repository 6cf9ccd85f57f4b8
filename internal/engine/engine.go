package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/bus"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/models"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Reader is what the engine reads from the time-series store: the readings
// to catch up on after a restart.
type Reader interface {
	QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error)
}

// Config tunes the engine.
type Config struct {
	// Ensemble configures the detector of every series.
	Ensemble detect.Config
	// Device configures the detector of every device with two series or
	// more; DeviceDetection turns it on.
	Device          detect.DeviceConfig
	DeviceDetection bool
	// ExtendRatio: a reading whose score is at least ExtendRatio × the
	// ensemble threshold keeps an open event open. Default 0.8.
	ExtendRatio float64
	// CloseAfter is the number of consecutive clean readings (rows) that
	// close an event. Default 10.
	CloseAfter int
	// CheckpointInterval is how often changed state is checkpointed and
	// idle devices evicted. Default 10s.
	CheckpointInterval time.Duration
	// IdleTimeout evicts (checkpoints and forgets) a device that sent
	// nothing for this long. Default 15m.
	IdleTimeout time.Duration
	// MaxSeries bounds the series held in memory; beyond it the least
	// recently used devices are evicted at the next checkpoint. Default
	// 100000.
	MaxSeries int
	// CatchUpChunk is the time span read from the store at once when
	// catching up after a restart. Default 6h.
	CatchUpChunk time.Duration
	// ConfigRefresh is how often Run re-reads the detector configurations
	// of the application database (see RefreshConfigs). Default 30s.
	ConfigRefresh time.Duration
	// SilenceCheck is how often Run judges the silence of the devices in
	// memory (CheckSilence). Default 10s.
	SilenceCheck time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Ensemble:           detect.DefaultConfig(),
		Device:             detect.DefaultDeviceConfig(),
		DeviceDetection:    true,
		ExtendRatio:        0.8,
		CloseAfter:         10,
		CheckpointInterval: 10 * time.Second,
		IdleTimeout:        15 * time.Minute,
		MaxSeries:          100000,
		CatchUpChunk:       6 * time.Hour,
		ConfigRefresh:      30 * time.Second,
		SilenceCheck:       10 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by Config.Validate's errors.
var ErrInvalidConfig = errors.New("invalid engine configuration")

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: %s = %v, want %s", ErrInvalidConfig, field, v, want))
	}
	if err := c.Ensemble.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ensemble: %w", err))
	}
	if c.DeviceDetection {
		if err := c.Device.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("device: %w", err))
		}
	}
	if !(c.ExtendRatio > 0 && c.ExtendRatio <= 1) {
		bad("extend_ratio", c.ExtendRatio, "in (0, 1]")
	}
	if c.CloseAfter < 1 {
		bad("close_after", c.CloseAfter, ">= 1")
	}
	if c.CheckpointInterval <= 0 {
		bad("checkpoint_interval", c.CheckpointInterval, "> 0")
	}
	if c.IdleTimeout <= 0 {
		bad("idle_timeout", c.IdleTimeout, "> 0")
	}
	if c.MaxSeries < 1 {
		bad("max_series", c.MaxSeries, ">= 1")
	}
	if c.CatchUpChunk < time.Millisecond {
		bad("catch_up_chunk", c.CatchUpChunk, ">= 1ms")
	}
	if c.ConfigRefresh <= 0 {
		bad("config_refresh", c.ConfigRefresh, "> 0")
	}
	if c.SilenceCheck <= 0 {
		bad("silence_check", c.SilenceCheck, "> 0")
	}
	return errors.Join(errs...)
}

// Options configure an Engine.
type Options struct {
	Config Config
	// Logger receives failures of background work; nil discards.
	Logger *slog.Logger
	// Now is the clock (idle eviction, catch-up bound); nil means time.Now.
	Now func() time.Time
	// Registerer receives the engine's metrics (vigil_detect_*); nil
	// registers none.
	Registerer prometheus.Registerer
	// Middleware wraps the engine's bus handler in Run, first outermost
	// (e.g. resilience.Recover).
	Middleware []bus.Middleware
	// Models, when not nil, gives the starting state of detectors without
	// a checkpoint: the active model of the series or device (a
	// *models.Registry).
	Models Models
}

// Models is what the engine needs of the model registry
// (*models.Registry): the learned starting state of a series' or a
// device's detector, ok false when no active model has it.
type Models interface {
	InitialState(ctx context.Context, seriesKey string) (models.Initial, bool, error)
	InitialDevice(ctx context.Context, device string) (models.InitialDevice, bool, error)
}

// Stats counts what an engine did since it was made.
type Stats struct {
	Scored  int64 // readings scored by a series detector
	Late    int64 // readings not scored: not newer than their series' last scored reading
	Devices int64 // devices in memory
	Series  int64 // series in memory
}

// Engine scores readings with per-series and per-device detectors and
// records anomaly events. It is safe for concurrent use; readings of one
// device are processed one batch at a time.
type Engine struct {
	ts     Reader
	db     appdb.Store
	sub    bus.Subscriber
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	models Models
	cfgs   configCache

	mu       sync.Mutex
	devices  map[string]*deviceState
	orphans  map[string]seen // registry state of dropped devices, not yet written
	decoders sync.Pool       // of *decoder

	handler bus.Handler // Handle wrapped in Options.Middleware

	nseries, scored, late     atomic.Int64
	opened, escalated, closed atomic.Int64
}

type deviceState struct {
	mu       sync.Mutex
	id       string
	loaded   bool
	gone     bool // evicted or dropped: look the device up again
	series   map[string]*seriesState
	dev      *devState // nil until the device has two series
	devOff   bool      // device detection disabled by a detector configuration
	lastUsed atomic.Int64
	// gen is the configuration generation (configSet.gen) d's detectors
	// were last reconciled with; 0: never.
	gen uint64
	// retired holds the checkpoint keys of detectors a configuration
	// turned off: deleted at d's next checkpoint, after the events that
	// closed with them are recorded.
	retired map[string]bool
	// seen is what d learned for the device registry since its last
	// registry write; stored what is known of its registry entry.
	seen   seen
	stored stored
}

type seriesState struct {
	series telemetry.Series
	ens    *detect.Ensemble // nil: detection disabled by a detector configuration
	extend float64          // ExtendRatio × the ensemble's threshold
	cfg    *detect.Config   // the ensemble's configuration; nil: the engine's (Config.Ensemble)
	model  string           // "name@version" of the model it started from, or ""
	scored int64            // time of the last scored reading; math.MinInt64 before the first
	tr     tracker
	nd     seriesNoData // silence check state
	dirty  bool
}

type devState struct {
	det     *detect.DeviceDetector
	cfg     detect.DeviceConfig
	model   string         // "name@version" of the model it started from, or ""
	sensors []string       // series keys, in detector order
	index   map[string]int // series key → position in sensors
	scored  int64
	tr      tracker
	dirty   bool
}

// New returns an engine reading the store ts, recording events in db and,
// in Run, consuming TopicTelemetry from sub (which may be nil when the
// caller feeds Process itself). It starts no goroutines.
func New(ts Reader, db appdb.Store, sub bus.Subscriber, opts Options) (*Engine, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{
		ts: ts, db: db, sub: sub, cfg: opts.Config, log: opts.Logger, now: opts.Now,
		models:  opts.Models,
		devices: make(map[string]*deviceState),
	}
	e.handler = bus.Chain(e.Handle, opts.Middleware...)
	if opts.Registerer != nil {
		if err := e.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Engine) register(reg prometheus.Registerer) error {
	count := func(name, help string, labels prometheus.Labels, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		count("vigil_detect_readings_total", "Readings handled by the detection engine, by result (scored, or late: not newer than their series' last scored reading).", prometheus.Labels{"result": "scored"}, &e.scored),
		count("vigil_detect_readings_total", "Readings handled by the detection engine, by result (scored, or late: not newer than their series' last scored reading).", prometheus.Labels{"result": "late"}, &e.late),
		count("vigil_detect_events_total", "Anomaly event announcements recorded, by action.", prometheus.Labels{"action": ActionOpen}, &e.opened),
		count("vigil_detect_events_total", "Anomaly event announcements recorded, by action.", prometheus.Labels{"action": ActionEscalate}, &e.escalated),
		count("vigil_detect_events_total", "Anomaly event announcements recorded, by action.", prometheus.Labels{"action": ActionClose}, &e.closed),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_detect_series", Help: "Series whose detector state is in memory."},
			func() float64 { return float64(e.nseries.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register detection metrics: %w", err)
		}
	}
	return nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n := len(e.devices)
	e.mu.Unlock()
	return Stats{Scored: e.scored.Load(), Late: e.late.Load(), Devices: int64(n), Series: e.nseries.Load()}
}

// Run catches up every checkpointed device (Resume), then consumes
// TopicTelemetry in GroupDetect until ctx is cancelled, checkpointing every
// CheckpointInterval. On return it has checkpointed all state.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.RefreshConfigs(ctx); err != nil {
		return fmt.Errorf("detection engine: %w", err)
	}
	if err := e.Resume(ctx); err != nil {
		return err
	}
	tctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.maintain(tctx) })
	var err, dlqErr error
	if e.sub != nil {
		wg.Go(func() {
			dlqErr = e.sub.Subscribe(tctx, bus.DeadLetterTopic(TopicTelemetry), GroupDetect, e.handleDeadLetter)
		})
		err = e.sub.Subscribe(ctx, TopicTelemetry, GroupDetect, e.handler)
	} else {
		<-ctx.Done()
	}
	cancel()
	wg.Wait()
	err = errors.Join(err, dlqErr)
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer fcancel()
	if ferr := e.Flush(fctx); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err != nil {
		return fmt.Errorf("detection engine: %w", err)
	}
	return nil
}

func (e *Engine) maintain(ctx context.Context) {
	t := time.NewTicker(e.cfg.CheckpointInterval)
	defer t.Stop()
	rt := time.NewTicker(e.cfg.ConfigRefresh)
	defer rt.Stop()
	st := time.NewTicker(e.cfg.SilenceCheck)
	defer st.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.C:
			if err := e.CheckSilence(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("silence check failed; will retry", "err", err)
			}
			continue
		case <-rt.C:
			if err := e.RefreshConfigs(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("detector configurations not refreshed; keeping the previous ones", "err", err)
			}
			continue
		case <-t.C:
		}
		if err := e.Flush(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("checkpoint failed; will retry", "err", err)
		}
		e.evict(ctx)
	}
}

// Handle is the bus handler of TopicTelemetry. A malformed message is
// logged and acknowledged (redelivering it cannot help); a failure to
// record events is returned, so the message is redelivered.
func (e *Engine) Handle(ctx context.Context, msg bus.Message) error {
	dec, _ := e.decoders.Get().(*decoder)
	if dec == nil {
		dec = new(decoder)
	}
	pts, keys, err := dec.decode(msg)
	e.decoders.Put(dec)
	if err == nil && msg.Key == "" {
		err = fmt.Errorf("decode telemetry message %s: %w: no key (device)", msg.ID, ErrBadMessage)
	}
	if err != nil {
		e.log.Warn("dropping malformed telemetry message", "err", err, "device", msg.Key)
		return nil
	}
	if len(pts) == 0 {
		return nil
	}
	// The points' Series are parsed from their keys only for series new
	// to the device (see newSeries).
	return e.processDevice(ctx, msg.Key, &keyed{pts: pts, keys: keys, unparsed: true})
}

// handleDeadLetter consumes the telemetry messages the bus gave up on
// (their handling failed MaxAttempts times, e.g. while the application
// database was down). It tries them once more and then acknowledges them
// whatever happens: a failure dropped the device's state, so its readings
// are re-read from the store when the device next loads.
func (e *Engine) handleDeadLetter(ctx context.Context, msg bus.Message) error {
	if err := e.handler(ctx, msg); err != nil && ctx.Err() == nil {
		e.log.Warn("dead-lettered telemetry not scored now; re-read from the store when the device reloads", "device", msg.Key, "err", err)
	}
	return nil
}

// Process scores points (of any devices, in any order) and records the
// events they open, extend, escalate or close. Per series, readings are
// scored in timestamp order; a reading not newer than the last scored
// reading of its series (a redelivery, or a late arrival) is not scored
// again, so processing the same points twice changes nothing.
//
// When recording fails, the device's in-memory state is dropped: the next
// batch of the device reloads it from its checkpoint and catches up from the
// store, so no reading is skipped.
func (e *Engine) Process(ctx context.Context, points []telemetry.Point) error {
	return e.process(ctx, points, nil)
}

// keyed is a device's points with their series keys (nil: compute them).
type keyed struct {
	pts  []telemetry.Point
	keys []string
	// unparsed: the points have no Series (a bus message): a new series
	// is parsed from its key, and must belong to the device.
	unparsed bool
}

// process is Process; keys, when not nil, holds the key of each point's
// series.
func (e *Engine) process(ctx context.Context, points []telemetry.Point, keys []string) error {
	if len(points) == 0 {
		return nil
	}
	first := DeviceOf(points[0].Series)
	single := true
	for _, p := range points[1:] {
		if p.Series.Device() != first && DeviceOf(p.Series) != first {
			single = false
			break
		}
	}
	if single { // the common case (a bus message): no copies
		return e.processDevice(ctx, first, &keyed{pts: points, keys: keys})
	}
	var order []string
	byDev := map[string]*keyed{}
	for i, p := range points {
		d := DeviceOf(p.Series)
		k := byDev[d]
		if k == nil {
			k = &keyed{}
			byDev[d] = k
			order = append(order, d)
		}
		k.pts = append(k.pts, p)
		if keys != nil {
			k.keys = append(k.keys, keys[i])
		}
	}
	var errs []error
	for _, d := range order {
		if err := e.processDevice(ctx, d, byDev[d]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lockDevice returns the state of device id, locked and loaded.
func (e *Engine) lockDevice(ctx context.Context, id string) (*deviceState, error) {
	for {
		e.mu.Lock()
		d := e.devices[id]
		if d == nil {
			d = &deviceState{id: id, series: map[string]*seriesState{}}
			e.devices[id] = d
			if o, ok := e.orphans[id]; ok {
				d.seen = o
				delete(e.orphans, id)
			}
		}
		e.mu.Unlock()
		d.mu.Lock()
		if d.gone {
			d.mu.Unlock()
			continue
		}
		d.lastUsed.Store(e.now().UnixNano())
		if !d.loaded {
			if err := e.load(ctx, d); err != nil {
				e.drop(d)
				d.mu.Unlock()
				return nil, err
			}
		}
		return d, nil
	}
}

func (e *Engine) processDevice(ctx context.Context, id string, pts *keyed) error {
	d, err := e.lockDevice(ctx, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	defer func() {
		// A detector that panics leaves its state half updated: forget
		// it (the next batch reloads it) and let the panic go on.
		if r := recover(); r != nil {
			e.drop(d)
			panic(r)
		}
	}()
	if err := e.scoreAndRecord(ctx, d, pts); err != nil {
		e.drop(d)
		return err
	}
	return nil
}

func (e *Engine) scoreAndRecord(ctx context.Context, d *deviceState, pts *keyed) error {
	evs, err := e.score(ctx, d, pts)
	if err != nil {
		return err
	}
	return e.record(ctx, evs)
}

// record writes evs and counts their announcements.
func (e *Engine) record(ctx context.Context, evs []event) error {
	if err := writeEvents(ctx, e.db, evs); err != nil {
		return err
	}
	for _, ev := range evs {
		for _, a := range ev.actions {
			switch a.action {
			case ActionOpen:
				e.opened.Add(1)
			case ActionEscalate:
				e.escalated.Add(1)
			case ActionClose:
				e.closed.Add(1)
			}
		}
	}
	return nil
}

// drop forgets d without checkpointing it; what it learned for the device
// registry is kept for the next Flush. The caller holds d.mu.
func (e *Engine) drop(d *deviceState) {
	d.gone = true
	e.nseries.Add(-int64(len(d.series)))
	var s seen
	if d.seen.ok {
		s = d.seen
		s.interval = reportInterval(d)
		d.seen = seen{}
	}
	e.mu.Lock()
	if e.devices[d.id] == d {
		delete(e.devices, d.id)
	}
	if s.ok {
		e.keepOrphan(d.id, s)
	}
	e.mu.Unlock()
}

// maxDeviceSensors is the most series a device detector takes (the
// detect package's limit); a device with more is scored by its first
// maxDeviceSensors series in key order.
const maxDeviceSensors = 256

type item struct {
	key string
	p   telemetry.Point
}

// score feeds pts to d's detectors and returns the events they changed,
// one entry per event (the last snapshot, with every announcement).
func (e *Engine) score(ctx context.Context, d *deviceState, pts *keyed) ([]event, error) {
	items := make([]item, 0, len(pts.pts))
	for i, p := range pts.pts {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		var key string
		if pts.keys != nil {
			key = pts.keys[i]
		} else {
			key = p.Series.Key()
		}
		items = append(items, item{key, p})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.p.Time, b.p.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	var evs []event
	at := map[string]int{}
	add := func(a appdb.Anomaly, acts []announce) {
		if i, ok := at[a.ID]; ok {
			evs[i].anomaly = a
			evs[i].actions = append(evs[i].actions, acts...)
			return
		}
		at[a.ID] = len(evs)
		evs = append(evs, event{anomaly: a, actions: acts})
	}
	if err := e.reconcile(ctx, d, add); err != nil {
		return nil, err
	}
	var vals []float64
	now := telemetry.Millis(e.now())
	for i := 0; i < len(items); {
		t := items[i].p.Time
		j := i
		for j < len(items) && items[j].p.Time == t {
			j++
		}
		group := items[i:j]
		i = j
		for k, it := range group {
			if k > 0 && it.key == group[k-1].key {
				continue // the same reading twice in one batch
			}
			s := d.series[it.key]
			if s == nil {
				series := it.p.Series
				if pts.unparsed {
					var err error
					if series, err = telemetry.ParseSeriesKey(it.key); err == nil && DeviceOf(series) != d.id {
						err = fmt.Errorf("series of device %q", DeviceOf(series))
					}
					if err != nil {
						e.log.Warn("dropping malformed reading", "device", d.id, "series", it.key, "err", err)
						continue
					}
				}
				var err error
				if s, err = e.newSeries(ctx, d.id, it.key, series); err != nil {
					return nil, err
				}
				d.series[it.key] = s
				e.nseries.Add(1)
			}
			d.seen.add(t)
			if s.ens == nil {
				continue // detection off for the series
			}
			if t <= s.scored {
				e.late.Add(1)
				continue
			}
			reported := e.resumed(d, it.key, s, t, add)
			r := s.ens.Update(t, it.p.Value)
			if reported {
				r = withoutNoData(r) // the silence check reported this gap
			}
			s.nd.Live = live(s.ens, t, now)
			s.scored, s.dirty = t, true
			e.scored.Add(1)
			st, err := s.tr.update(it.key, t, r, s.extend, e.cfg.CloseAfter, func() (bool, error) {
				return e.muted(ctx, d.id, &s.series, t)
			})
			if err != nil {
				return nil, err
			}
			if st.changed || len(st.actions) > 0 {
				a := s.tr.snapshot(d.id, it.key, s.model)
				if len(a.Sensors) == 0 {
					a.Sensors = []string{s.series.Field}
				}
				add(a, st.actions)
			}
		}
		if !e.cfg.DeviceDetection {
			continue
		}
		if d.dev == nil && !d.devOff {
			if err := e.newDevice(ctx, d); err != nil {
				return nil, err
			}
		}
		if d.dev == nil || t <= d.dev.scored {
			continue
		}
		vals = vals[:0]
		for range d.dev.sensors {
			vals = append(vals, math.NaN())
		}
		valid := false
		for _, it := range group {
			if s := d.series[it.key]; s == nil || s.ens == nil {
				continue // detection of the series off since the detector was made
			}
			if x, ok := d.dev.index[it.key]; ok {
				vals[x] = it.p.Value
				valid = true
			}
		}
		if !valid {
			continue
		}
		r := d.dev.det.Update(t, vals)
		d.dev.scored, d.dev.dirty = t, true
		key := "device:" + d.id
		st, err := d.dev.tr.update(key, t, r, 1, e.cfg.CloseAfter, func() (bool, error) {
			return e.muted(ctx, d.id, nil, t)
		})
		if err != nil {
			return nil, err
		}
		if st.changed || len(st.actions) > 0 {
			add(d.dev.tr.snapshot(d.id, "", d.dev.model), st.actions)
		}
	}
	return evs, nil
}

// newSeries returns the state of a series seen for the first time (no
// checkpoint): detection off when the most specific detector configuration
// covering it disables it; else the detector of the series' active model
// (Options.Models), with the model's configuration; else a cold detector
// with the configuration's parameters (or Config.Ensemble).
func (e *Engine) newSeries(ctx context.Context, device, key string, series telemetry.Series) (*seriesState, error) {
	set, err := e.configs(ctx)
	if err != nil {
		return nil, err
	}
	return e.newSeriesIn(ctx, set, device, key, series)
}

// newSeriesIn is newSeries under the configurations set.
func (e *Engine) newSeriesIn(ctx context.Context, set *configSet, device, key string, series telemetry.Series) (*seriesState, error) {
	s := &seriesState{series: series, scored: math.MinInt64}
	cfg := e.cfg.Ensemble
	if c, ok := resolve(set.ensemble, device, &series, key); ok {
		if !c.enabled {
			return s, nil
		}
		cfg = c.ens
	}
	if e.models != nil && (set.hasModel(models.SeriesScope(key).Name()) || set.hasModel(models.DeviceScope(device).Name())) {
		init, ok, err := e.models.InitialState(ctx, key)
		if err == nil && ok {
			var ens *detect.Ensemble
			if ens, err = init.Ensemble(); err == nil {
				s.ens, s.model = ens, fmt.Sprintf("%s@%d", init.Model, init.Version)
				s.setConfig(init.Config, e.cfg)
				return s, nil
			}
		}
		if err != nil {
			if !permanent(err) {
				return nil, fmt.Errorf("initial state of series %q: %w", key, err)
			}
			e.log.Error("unusable model; the series starts cold", "device", device, "series", key, "err", err)
		}
	}
	s.ens = detect.NewEnsemble(cfg)
	s.setConfig(cfg, e.cfg)
	return s, nil
}

// setConfig records cfg as the configuration of s's ensemble, under the
// engine configuration ec.
func (s *seriesState) setConfig(cfg detect.Config, ec Config) {
	s.extend = ec.ExtendRatio * cfg.Threshold
	s.cfg = nil
	if !reflect.DeepEqual(cfg, ec.Ensemble) {
		s.cfg = &cfg
	}
}

// config returns the configuration of s's ensemble under the engine
// configuration ec.
func (s *seriesState) config(ec Config) detect.Config {
	if s.cfg != nil {
		return *s.cfg
	}
	return ec.Ensemble
}

// newDevice makes d's device detector once d has two scored series:
// none when the most specific detector configuration covering the device
// disables it; else the detector of the device's active model; else a
// cold one over the device's series. The caller holds d.mu.
func (e *Engine) newDevice(ctx context.Context, d *deviceState) error {
	var sensors []string
	for k, s := range d.series {
		if s.ens != nil {
			sensors = append(sensors, k)
		}
	}
	if len(sensors) < 2 {
		return nil
	}
	set, err := e.configs(ctx)
	if err != nil {
		return err
	}
	return e.newDeviceIn(ctx, set, d, sensors)
}

// newDeviceIn is newDevice under the configurations set, over the enabled
// series sensors (two or more).
func (e *Engine) newDeviceIn(ctx context.Context, set *configSet, d *deviceState, sensors []string) error {
	cfg := e.cfg.Device
	if c, ok := resolve(set.device, d.id, nil, ""); ok {
		if !c.enabled {
			d.devOff = true
			return nil
		}
		cfg = c.dev
	}
	if e.models != nil && set.hasModel(models.DeviceScope(d.id).Name()) {
		init, ok, err := e.models.InitialDevice(ctx, d.id)
		if err == nil && ok {
			var det *detect.DeviceDetector
			if det, err = init.Detector(); err == nil {
				d.dev = newDevState(init.Config, init.Sensors, det)
				d.dev.model = fmt.Sprintf("%s@%d", init.Model, init.Version)
				return nil
			}
		}
		if err != nil {
			if !permanent(err) {
				return fmt.Errorf("initial state of device %q: %w", d.id, err)
			}
			e.log.Error("unusable model; the device detector starts cold", "device", d.id, "err", err)
		}
	}
	slices.Sort(sensors)
	d.dev = newDevState(cfg, sensors[:min(len(sensors), maxDeviceSensors)], nil)
	return nil
}

// permanent reports whether a model registry error will not go away by
// retrying: the detector starts cold instead.
func permanent(err error) bool {
	return errors.Is(err, models.ErrCorrupt) || errors.Is(err, models.ErrInvalid)
}

func newDevState(cfg detect.DeviceConfig, sensors []string, det *detect.DeviceDetector) *devState {
	if det == nil {
		det = detect.NewDeviceDetector(cfg, sensors)
	}
	ds := &devState{det: det, cfg: cfg, sensors: sensors, index: make(map[string]int, len(sensors)), scored: math.MinInt64}
	for i, s := range sensors {
		ds.index[s] = i
	}
	return ds
}

// muted reports whether a maintenance window covering the device (or the
// series, when not nil) is active at t.
func (e *Engine) muted(ctx context.Context, device string, s *telemetry.Series, t int64) (bool, error) {
	f := appdb.MaintenanceFilter{ActiveAt: telemetry.FromMillis(t), Page: appdb.Page{Limit: appdb.MaxLimit}}
	for {
		ws, next, err := e.db.Maintenance().Find(ctx, f)
		if err != nil {
			return false, fmt.Errorf("find maintenance windows of device %q at %d: %w", device, t, err)
		}
		for _, w := range ws {
			if scopeCovers(w.Scope, device, s) {
				return true, nil
			}
		}
		if next == "" {
			return false, nil
		}
		f.Cursor = next
	}
}

// scopeCovers reports whether sc covers the series s of device (or the
// device itself when s is nil).
func scopeCovers(sc appdb.Scope, device string, s *telemetry.Series) bool {
	switch sc.Kind {
	case appdb.ScopeGlobal, "":
		return true
	case appdb.ScopeDevice:
		return sc.Target == device
	case appdb.ScopeSeries:
		return s != nil && sc.Target == s.Key()
	case appdb.ScopeSelector:
		for k, v := range sc.Selector {
			var got string
			var ok bool
			if s != nil {
				got, ok = s.Tags.Get(k)
			} else if k == telemetry.DeviceTag {
				got, ok = device, true
			}
			if !ok || got != v {
				return false
			}
		}
		return true
	}
	return false
}

// load restores d from its checkpoints and catches up on the readings
// stored since. The caller holds d.mu.
func (e *Engine) load(ctx context.Context, d *deviceState) error {
	f := appdb.CheckpointFilter{KeyPrefix: devicePrefix(d.id), Page: appdb.Page{Limit: appdb.MaxLimit}}
	from := int64(math.MaxInt64)
	for {
		cps, next, err := e.db.Checkpoints().Find(ctx, f)
		if err != nil {
			return fmt.Errorf("load checkpoints of device %q: %w", d.id, err)
		}
		for _, cp := range cps {
			if t, ok := e.restore(d, cp); ok {
				from = min(from, t)
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	d.loaded = true
	// The configurations may have changed since the checkpoints: a
	// detector they turn off is not restored, nor scored by catch-up.
	evs, err := e.reconcileEvents(ctx, d)
	if err == nil {
		err = e.record(ctx, evs)
	}
	if err != nil {
		return fmt.Errorf("load device %q: %w", d.id, err)
	}
	if from == math.MaxInt64 {
		return nil // a new device: nothing to catch up on
	}
	return e.catchUp(ctx, d, from+1)
}

// restore restores one checkpoint into d and returns its scored-through
// time; a checkpoint that cannot be read is logged and skipped (the series
// starts afresh).
func (e *Engine) restore(d *deviceState, cp appdb.Checkpoint) (int64, bool) {
	_, seriesKey, err := parseCheckpointKey(cp.Key)
	var det []byte
	var meta stateMeta
	if err == nil {
		det, meta, err = decodeState(cp.State)
	}
	if err == nil && meta.Config != nil {
		err = meta.Config.Validate()
	}
	if err == nil && meta.DeviceConfig != nil {
		err = meta.DeviceConfig.Validate()
	}
	t := telemetry.Millis(cp.ScoredThrough)
	if err == nil && seriesKey == "" {
		if len(meta.Sensors) == 0 || len(meta.Sensors) > maxDeviceSensors {
			err = fmt.Errorf("device checkpoint with %d sensors: %w", len(meta.Sensors), ErrBadCheckpoint)
		} else {
			cfg := e.cfg.Device
			if meta.DeviceConfig != nil {
				cfg = *meta.DeviceConfig
			}
			dd := detect.NewDeviceDetector(cfg, meta.Sensors)
			if err = dd.UnmarshalBinary(det); err == nil {
				d.dev = newDevState(cfg, meta.Sensors, dd)
				d.dev.scored, d.dev.tr, d.dev.model = t, meta.Tracker, meta.Model
				return t, true
			}
		}
	} else if err == nil {
		var s telemetry.Series
		if s, err = telemetry.ParseSeriesKey(seriesKey); err == nil {
			cfg := e.cfg.Ensemble
			if meta.Config != nil {
				cfg = *meta.Config
			}
			ens := detect.NewEnsemble(cfg)
			if err = ens.UnmarshalBinary(det); err == nil {
				if d.series[seriesKey] == nil {
					e.nseries.Add(1)
				}
				ss := &seriesState{series: s, ens: ens, model: meta.Model, scored: t, tr: meta.Tracker}
				if meta.NoData != nil {
					ss.nd = *meta.NoData
				}
				ss.setConfig(cfg, e.cfg)
				d.series[seriesKey] = ss
				return t, true
			}
		}
	}
	e.log.Warn("ignoring unreadable checkpoint; the series re-warms", "device", d.id, "key", cp.Key, "err", err)
	return 0, false
}

// catchUpHorizon is how far past the clock catch-up reads (readings may
// carry timestamps a little in the future).
const catchUpHorizon = 24 * time.Hour

// catchUp scores the stored readings of d from from (Unix ms) on.
func (e *Engine) catchUp(ctx context.Context, d *deviceState, from int64) error {
	end := telemetry.Millis(e.now().Add(catchUpHorizon))
	chunk := e.cfg.CatchUpChunk.Milliseconds()
	sel := deviceSelector(d.id)
	for start := from; start < end; start += chunk {
		r := timeseries.Range{Start: start, End: min(start+chunk, end)}
		res, err := e.ts.QueryRange(ctx, sel, r)
		if err != nil {
			return fmt.Errorf("catch up device %q over [%d, %d): %w", d.id, r.Start, r.End, err)
		}
		var pts []telemetry.Point
		for _, ss := range res {
			for _, smp := range ss.Samples {
				pts = append(pts, telemetry.Point{Series: ss.Series, Time: smp.Time, Value: smp.Value})
			}
		}
		if len(pts) == 0 {
			continue
		}
		if err := e.scoreAndRecord(ctx, d, &keyed{pts: pts}); err != nil {
			return err
		}
	}
	return nil
}

// Resume loads every checkpointed device and catches it up with the
// store, so that no stored reading is left unscored after a restart (also
// readings whose bus messages were lost in a crash). A device that fails
// is logged and retried when its next batch arrives.
func (e *Engine) Resume(ctx context.Context) error {
	f := appdb.CheckpointFilter{KeyPrefix: checkpointPrefix, Page: appdb.Page{Limit: appdb.MaxLimit}}
	var devices []string
	for {
		cps, next, err := e.db.Checkpoints().Find(ctx, f)
		if err != nil {
			return fmt.Errorf("resume detection: list checkpoints: %w", err)
		}
		for _, cp := range cps {
			dev, _, err := parseCheckpointKey(cp.Key)
			if err != nil {
				continue
			}
			if len(devices) == 0 || devices[len(devices)-1] != dev {
				devices = append(devices, dev)
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	for _, id := range slices.Compact(devices) {
		d, err := e.lockDevice(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.log.Warn("resume of device failed; retried on its next reading", "device", id, "err", err)
			continue
		}
		d.mu.Unlock()
		if e.nseries.Load() > int64(e.cfg.MaxSeries) {
			e.evict(ctx)
		}
	}
	return nil
}

// Flush checkpoints the changed state of every device in memory, then
// writes the device registry entries of the devices that got readings
// since their last registry write (also of devices dropped since). A
// registry write that fails is logged and retried at the next Flush; it
// is not part of the returned error.
func (e *Engine) Flush(ctx context.Context) error {
	var errs []error
	ds := e.snapshotDevices()
	for _, d := range ds {
		d.mu.Lock()
		if !d.gone && d.loaded {
			if err := e.checkpoint(ctx, d); err != nil {
				errs = append(errs, err)
			}
		}
		d.mu.Unlock()
	}
	for _, d := range ds {
		e.flushRegistry(ctx, d)
	}
	e.flushOrphans(ctx)
	return errors.Join(errs...)
}

func (e *Engine) snapshotDevices() []*deviceState {
	e.mu.Lock()
	defer e.mu.Unlock()
	ds := make([]*deviceState, 0, len(e.devices))
	for _, d := range e.devices {
		ds = append(ds, d)
	}
	return ds
}

// checkpoint writes the changed state of d in one transaction. The caller
// holds d.mu.
func (e *Engine) checkpoint(ctx context.Context, d *deviceState) error {
	var cps []appdb.Checkpoint
	prefix := devicePrefix(d.id)
	for key, s := range d.series {
		if !s.dirty || s.ens == nil {
			continue
		}
		det, err := s.ens.MarshalBinary()
		if err != nil {
			return fmt.Errorf("checkpoint series %q: %w", key, err)
		}
		var nd *seriesNoData
		if !s.nd.zero() {
			nd = &s.nd
		}
		st, err := encodeState(det, stateMeta{Tracker: s.tr, Model: s.model, Config: s.cfg, NoData: nd})
		if err != nil {
			return err
		}
		cps = append(cps, appdb.Checkpoint{Key: prefix + key, ScoredThrough: telemetry.FromMillis(s.scored), State: st})
	}
	if d.dev != nil && d.dev.dirty {
		det, err := d.dev.det.MarshalBinary()
		if err != nil {
			return fmt.Errorf("checkpoint device %q: %w", d.id, err)
		}
		var cfg *detect.DeviceConfig
		if !reflect.DeepEqual(d.dev.cfg, e.cfg.Device) {
			cfg = &d.dev.cfg
		}
		st, err := encodeState(det, stateMeta{Tracker: d.dev.tr, Sensors: d.dev.sensors, Model: d.dev.model, DeviceConfig: cfg})
		if err != nil {
			return err
		}
		cps = append(cps, appdb.Checkpoint{Key: prefix, ScoredThrough: telemetry.FromMillis(d.dev.scored), State: st})
	}
	if len(cps) == 0 && len(d.retired) == 0 {
		return nil
	}
	err := e.db.InTx(ctx, func(tx appdb.Tx) error {
		for key := range d.retired {
			if err := tx.Checkpoints().Delete(ctx, key); err != nil && !errors.Is(err, appdb.ErrNotFound) {
				return err
			}
		}
		for _, cp := range cps {
			if _, err := tx.Checkpoints().Put(ctx, cp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint device %q (%d keys, %d deleted): %w", d.id, len(cps), len(d.retired), err)
	}
	d.retired = nil
	for _, s := range d.series {
		s.dirty = false
	}
	if d.dev != nil {
		d.dev.dirty = false
	}
	return nil
}

// evict checkpoints and forgets the devices idle for IdleTimeout (unless
// the silence check still has to judge them: see awaitingSilence), and the
// least recently used ones while more than MaxSeries series are held.
func (e *Engine) evict(ctx context.Context) {
	ds := e.snapshotDevices()
	slices.SortFunc(ds, func(a, b *deviceState) int { return cmp.Compare(a.lastUsed.Load(), b.lastUsed.Load()) })
	now := e.now()
	idleBefore := now.Add(-e.cfg.IdleTimeout).UnixNano()
	for _, d := range ds {
		over := e.nseries.Load() > int64(e.cfg.MaxSeries)
		if d.lastUsed.Load() >= idleBefore && !over {
			break
		}
		d.mu.Lock()
		if !d.gone && (over || !awaitingSilence(d, telemetry.Millis(now))) {
			if err := e.checkpoint(ctx, d); err != nil {
				if ctx.Err() == nil {
					e.log.Warn("eviction checkpoint failed; device kept", "device", d.id, "err", err)
				}
			} else {
				e.drop(d)
			}
		}
		d.mu.Unlock()
	}
}
