package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/cache"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/objects"
	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// History is what the registry reads of the time-series store.
type History interface {
	QueryRange(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]timeseries.SeriesSamples, error)
	Downsample(ctx context.Context, sel timeseries.Selector, r timeseries.Range, step time.Duration, aggs []timeseries.Aggregate) ([]timeseries.SeriesBuckets, error)
	ListSeries(ctx context.Context, sel timeseries.Selector, r timeseries.Range) ([]telemetry.Series, error)
}

// MetaStore is what the registry needs of the model metadata repository
// (appdb.ModelMetaRepository satisfies it).
type MetaStore interface {
	Create(ctx context.Context, m appdb.ModelMeta) (appdb.ModelMeta, error)
	Get(ctx context.Context, name string, version int) (appdb.ModelMeta, error)
	Delete(ctx context.Context, name string, version int) error
	Find(ctx context.Context, f appdb.ModelMetaFilter) ([]appdb.ModelMeta, string, error)
	Promote(ctx context.Context, name string, version int) (appdb.ModelMeta, error)
}

// ArtifactStore is what the registry needs of the object store
// (*objects.Store satisfies it).
type ArtifactStore interface {
	PutBytes(ctx context.Context, key string, data []byte, opts objects.PutOptions) (objects.Info, error)
	Get(ctx context.Context, key string) ([]byte, objects.Info, error)
	Delete(ctx context.Context, key string) error
}

var (
	_ MetaStore     = appdb.ModelMetaRepository(nil)
	_ ArtifactStore = (*objects.Store)(nil)
	_ History       = timeseries.Repository(nil)
)

// Defaults of Options.
const (
	DefaultArtifactTTL = time.Hour
	DefaultActiveTTL   = 30 * time.Second
	DefaultWindow      = 24 * time.Hour
)

// Options tune a Registry. The zero value is valid.
type Options struct {
	// Config and DeviceConfig are the detector configurations Train uses;
	// detect.DefaultConfig() and detect.DefaultDeviceConfig() when zero.
	Config       *detect.Config
	DeviceConfig *detect.DeviceConfig
	// Code is the Vigil version recorded with each model ("dev" if empty).
	Code string
	// ArtifactTTL is how long artifact bytes stay cached
	// (DefaultArtifactTTL when 0). Artifacts never change, so this only
	// bounds memory held for models no longer used.
	ArtifactTTL time.Duration
	// ActiveTTL is how long the answer to "which version of name is
	// active" (including "none") is cached (DefaultActiveTTL when 0): a
	// promotion by another process is seen by this one within ActiveTTL.
	// This process's own Promote, Rollback and Prune invalidate at once.
	ActiveTTL time.Duration
	// Window is the span of history read per query when training or
	// backtesting (DefaultWindow when under a millisecond): memory is
	// bounded by the readings of one window.
	Window time.Duration
	// Now is the clock (time.Now when nil); Logger logs (discarded when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Registry trains, stores, loads and manages model versions. It is safe for
// concurrent use; it starts no goroutines and owns none of the stores.
type Registry struct {
	ts    History // nil: training and backtests fail with ErrUnavailable
	meta  MetaStore
	art   ArtifactStore
	cache cache.Cache
	opts  Options
	cfg   detect.Config
	dcfg  detect.DeviceConfig
}

// New returns a Registry over the stores. ts may be nil for a registry that
// only manages models (list, promote, load). It fails with ErrInvalid when a
// configuration in opts does not validate.
func New(ts History, meta MetaStore, art ArtifactStore, c cache.Cache, opts Options) (*Registry, error) {
	r := &Registry{ts: ts, meta: meta, art: art, cache: c, opts: opts, cfg: detect.DefaultConfig(), dcfg: detect.DefaultDeviceConfig()}
	if opts.Config != nil {
		r.cfg = *opts.Config
	}
	if opts.DeviceConfig != nil {
		r.dcfg = *opts.DeviceConfig
	}
	if err := errors.Join(r.cfg.Validate(), r.dcfg.Validate()); err != nil {
		return nil, fmt.Errorf("new model registry: %w: %w", ErrInvalid, err)
	}
	if r.opts.Code == "" {
		r.opts.Code = "dev"
	}
	if r.opts.ArtifactTTL <= 0 {
		r.opts.ArtifactTTL = DefaultArtifactTTL
	}
	if r.opts.ActiveTTL <= 0 {
		r.opts.ActiveTTL = DefaultActiveTTL
	}
	if r.opts.Window < time.Millisecond {
		r.opts.Window = DefaultWindow
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// ArtifactKey returns the object store key of version v of the model name:
// models/<first 16 bytes of SHA-256(name), hex>/<v>.bin.
func ArtifactKey(name string, v int) string {
	h := sha256.Sum256([]byte(name))
	return "models/" + hex.EncodeToString(h[:16]) + "/" + strconv.Itoa(v) + ".bin"
}

func checksum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// wrapDB maps appdb kinds to this package's.
func wrapDB(err error) error {
	if errors.Is(err, appdb.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if errors.Is(err, appdb.ErrInvalid) {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// maxSaveAttempts bounds the retries of Save when other writers take the
// version it picked.
const maxSaveAttempts = 8

// Save stores art as a new candidate version of its scope's model, with
// training metadata tr (Format and Size are filled in), and returns its
// metadata.
//
// The artifact is written first, write-once, under the next free version;
// the metadata follows. A crash in between leaves an unreferenced artifact,
// which is skipped (never overwritten) by later saves; metadata never names
// a missing artifact.
func (r *Registry) Save(ctx context.Context, art Artifact, tr Training) (Meta, error) {
	name := art.Scope.Name()
	b, err := art.Encode()
	if err != nil {
		return Meta{}, fmt.Errorf("save model %s: %w", name, err)
	}
	tr.Format, tr.Size = FormatVersion, len(b)
	if tr.Code == "" {
		tr.Code = r.opts.Code
	}
	versions, err := r.List(ctx, name)
	if err != nil {
		return Meta{}, fmt.Errorf("save model %s: %w", name, err)
	}
	next := 1
	if len(versions) > 0 {
		next = versions[len(versions)-1].Version + 1
	}
	sum := checksum(b)
	for range maxSaveAttempts {
		key := ArtifactKey(name, next)
		_, err := r.art.PutBytes(ctx, key, b, objects.PutOptions{IfAbsent: true, Metadata: map[string]string{"vigil-model-version": strconv.Itoa(next)}})
		if errors.Is(err, objects.ErrExists) {
			next++
			continue
		}
		if err != nil {
			return Meta{}, fmt.Errorf("save model %s@%d: %w", name, next, err)
		}
		m := Meta{Name: name, Version: next, Scope: art.Scope, Stage: StageCandidate, Checksum: sum, ArtifactKey: key, Training: tr}
		dm, err := m.db()
		if err != nil {
			return Meta{}, err
		}
		got, err := r.meta.Create(ctx, dm)
		if errors.Is(err, appdb.ErrConflict) {
			// Metadata of this version was written by someone not
			// following this protocol: leave the artifact (it may be
			// what that metadata names) and take the next version.
			next++
			continue
		}
		if err != nil {
			return Meta{}, fmt.Errorf("save model %s@%d: %w", name, next, wrapDB(err))
		}
		return fromDB(got)
	}
	return Meta{}, fmt.Errorf("save model %s: versions up to %d taken by concurrent writers", name, next)
}

// Meta returns the metadata of version v of name.
func (r *Registry) Meta(ctx context.Context, name string, v int) (Meta, error) {
	d, err := r.meta.Get(ctx, name, v)
	if err != nil {
		return Meta{}, fmt.Errorf("model %s@%d: %w", name, v, wrapDB(err))
	}
	return fromDB(d)
}

// Model is one loaded model version.
type Model struct {
	Meta
	Artifact Artifact
}

// Load returns version v of name, its artifact read through the cache and
// checked against the metadata's checksum (ErrCorrupt on a mismatch).
func (r *Registry) Load(ctx context.Context, name string, v int) (*Model, error) {
	m, err := r.Meta(ctx, name, v)
	if err != nil {
		return nil, fmt.Errorf("load %w", err)
	}
	return r.load(ctx, m)
}

func artifactCacheKey(name string, v int) string {
	return "models/artifact/" + name + "@" + strconv.Itoa(v)
}
func activeCacheKey(name string) string { return "models/active/" + name }

func (r *Registry) load(ctx context.Context, m Meta) (*Model, error) {
	ck := artifactCacheKey(m.Name, m.Version)
	b, err := r.cache.Get(ctx, ck)
	if err == nil && checksum(b) != m.Checksum {
		// A cache is not a store of record: a bad entry is dropped and
		// the object store asked.
		r.opts.Logger.Warn("cached model artifact does not match its checksum", "model", m.Name, "version", m.Version)
		_ = r.cache.Delete(ctx, ck)
		err = cache.ErrNotFound
	}
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			r.opts.Logger.Warn("model cache get", "model", m.Name, "version", m.Version, "err", err)
		}
		b, _, err = r.art.Get(ctx, m.ArtifactKey)
		if errors.Is(err, objects.ErrCorrupt) {
			return nil, fmt.Errorf("load model %s@%d: %w: %w", m.Name, m.Version, ErrCorrupt, err)
		}
		if errors.Is(err, objects.ErrNotFound) {
			return nil, fmt.Errorf("load model %s@%d: artifact %s missing: %w: %w", m.Name, m.Version, m.ArtifactKey, ErrNotFound, err)
		}
		if err != nil {
			return nil, fmt.Errorf("load model %s@%d: %w", m.Name, m.Version, err)
		}
		if got := checksum(b); got != m.Checksum {
			return nil, fmt.Errorf("load model %s@%d: %w: artifact %s has %s, metadata records %s", m.Name, m.Version, ErrCorrupt, m.ArtifactKey, got, m.Checksum)
		}
		if err := r.cache.Set(ctx, ck, b, r.opts.ArtifactTTL); err != nil {
			r.opts.Logger.Warn("model cache set", "model", m.Name, "version", m.Version, "err", err)
		}
	}
	a, err := DecodeArtifact(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s@%d: %w", m.Name, m.Version, err)
	}
	if a.Scope != m.Scope {
		return nil, fmt.Errorf("load model %s@%d: %w: artifact is of scope %s", m.Name, m.Version, ErrCorrupt, a.Scope)
	}
	return &Model{Meta: m, Artifact: a}, nil
}

// activeMeta returns the metadata of the active version of name, through
// the cache; ok is false when name has none.
func (r *Registry) activeMeta(ctx context.Context, name string) (m Meta, ok bool, err error) {
	ck := activeCacheKey(name)
	if b, err := r.cache.Get(ctx, ck); err == nil {
		var c struct {
			OK   bool
			Meta Meta
		}
		if json.Unmarshal(b, &c) == nil {
			return c.Meta, c.OK, nil
		}
		_ = r.cache.Delete(ctx, ck)
	}
	found, _, err := r.meta.Find(ctx, appdb.ModelMetaFilter{Name: name, Stage: StageActive, Page: appdb.Page{Limit: 1}})
	if err != nil {
		return Meta{}, false, fmt.Errorf("active model %s: %w", name, wrapDB(err))
	}
	if len(found) > 0 {
		if m, err = fromDB(found[0]); err != nil {
			return Meta{}, false, err
		}
		ok = true
	}
	b, err := json.Marshal(struct {
		OK   bool
		Meta Meta
	}{ok, m})
	if err == nil {
		err = r.cache.Set(ctx, ck, b, r.opts.ActiveTTL)
	}
	if err != nil {
		r.opts.Logger.Warn("model cache set", "model", name, "err", err)
	}
	return m, ok, nil
}

// Active returns the active version of name, through the cache. It fails
// with ErrNotFound when name has no active version.
func (r *Registry) Active(ctx context.Context, name string) (*Model, error) {
	m, ok, err := r.activeMeta(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("active model %s: %w", name, ErrNotFound)
	}
	return r.load(ctx, m)
}

// List returns every version of name, oldest first.
func (r *Registry) List(ctx context.Context, name string) ([]Meta, error) {
	var out []Meta
	f := appdb.ModelMetaFilter{Name: name, Page: appdb.Page{Limit: appdb.MaxLimit}}
	for {
		page, next, err := r.meta.Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list model %s: %w", name, wrapDB(err))
		}
		for _, d := range page {
			m, err := fromDB(d)
			if err != nil {
				return nil, fmt.Errorf("list model %s: %w", name, err)
			}
			out = append(out, m)
		}
		if next == "" {
			return out, nil
		}
		f.Cursor = next
	}
}

// Names returns the names of the models that have an active version, or
// every model name when all is true, sorted.
func (r *Registry) Names(ctx context.Context, all bool) ([]string, error) {
	f := appdb.ModelMetaFilter{Page: appdb.Page{Limit: appdb.MaxLimit}}
	if !all {
		f.Stage = StageActive
	}
	seen := map[string]bool{}
	for {
		page, next, err := r.meta.Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list model names: %w", wrapDB(err))
		}
		for _, d := range page {
			seen[d.Name] = true
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Promote makes version v of name the active one and archives the version
// active before. The artifact is loaded and verified first: a corrupt or
// missing artifact is never activated.
func (r *Registry) Promote(ctx context.Context, name string, v int) (Meta, error) {
	if _, err := r.Load(ctx, name, v); err != nil {
		return Meta{}, fmt.Errorf("promote: %w", err)
	}
	d, err := r.meta.Promote(ctx, name, v)
	_ = r.cache.Delete(ctx, activeCacheKey(name))
	if err != nil {
		return Meta{}, fmt.Errorf("promote model %s@%d: %w", name, v, wrapDB(err))
	}
	return fromDB(d)
}

// Rollback re-activates the previous version of name: the newest archived
// version older than the active one (archived versions are those that were
// active once). Rolling back repeatedly walks back through them. It fails
// with ErrNotFound when name has no active version and ErrNoPrevious when
// no older archived version exists.
func (r *Registry) Rollback(ctx context.Context, name string) (Meta, error) {
	vs, err := r.List(ctx, name)
	if err != nil {
		return Meta{}, fmt.Errorf("rollback: %w", err)
	}
	active := -1
	for i, m := range vs {
		if m.Stage == StageActive {
			active = i
		}
	}
	if active < 0 {
		return Meta{}, fmt.Errorf("rollback model %s: no active version: %w", name, ErrNotFound)
	}
	for i := active - 1; i >= 0; i-- {
		if vs[i].Stage == StageArchived {
			m, err := r.Promote(ctx, name, vs[i].Version)
			if err != nil {
				return Meta{}, fmt.Errorf("rollback model %s to %d: %w", name, vs[i].Version, err)
			}
			return m, nil
		}
	}
	return Meta{}, fmt.Errorf("rollback model %s from version %d: %w", name, vs[active].Version, ErrNoPrevious)
}

// Prune deletes every version of name but the newest keep (keep >= 1) and
// the active one, wherever it is: metadata first, then the artifact and its
// cache entry. It returns the versions deleted.
func (r *Registry) Prune(ctx context.Context, name string, keep int) ([]int, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune model %s: %w: keep %d, want at least 1", name, ErrInvalid, keep)
	}
	vs, err := r.List(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var deleted []int
	for _, m := range vs[:max(len(vs)-keep, 0)] {
		if m.Stage == StageActive {
			continue
		}
		if err := r.meta.Delete(ctx, name, m.Version); err != nil && !errors.Is(err, appdb.ErrNotFound) {
			return deleted, fmt.Errorf("prune model %s@%d: %w", name, m.Version, wrapDB(err))
		}
		if err := r.art.Delete(ctx, m.ArtifactKey); err != nil {
			return deleted, fmt.Errorf("prune model %s@%d: artifact %s: %w", name, m.Version, m.ArtifactKey, err)
		}
		_ = r.cache.Delete(ctx, artifactCacheKey(name, m.Version))
		deleted = append(deleted, m.Version)
	}
	return deleted, nil
}

// Initial is the starting state of one series' Ensemble, taken from a model.
type Initial struct {
	Model   string // model name
	Version int
	Config  detect.Config
	State   []byte // detect.Ensemble.MarshalBinary
}

// Ensemble returns an Ensemble configured with i.Config and restored from
// i.State.
func (i Initial) Ensemble() (*detect.Ensemble, error) {
	e, err := restoreEnsemble(i.Config, i.State)
	if err != nil {
		return nil, fmt.Errorf("model %s@%d: %w", i.Model, i.Version, err)
	}
	return e, nil
}

// InitialState returns the learned state of the series with key from the
// active model of the series, or else from the active model of its device
// (the series' device tag). ok is false when neither has the series. Both
// lookups go through the cache, negative answers included.
func (r *Registry) InitialState(ctx context.Context, seriesKey string) (Initial, bool, error) {
	names := []string{SeriesScope(seriesKey).Name()}
	if s, err := telemetry.ParseSeriesKey(seriesKey); err == nil && s.Device() != "" {
		names = append(names, DeviceScope(s.Device()).Name())
	}
	for _, name := range names {
		m, ok, err := r.activeMeta(ctx, name)
		if err != nil {
			return Initial{}, false, fmt.Errorf("initial state of %q: %w", seriesKey, err)
		}
		if !ok {
			continue
		}
		mod, err := r.load(ctx, m)
		if err != nil {
			return Initial{}, false, fmt.Errorf("initial state of %q: %w", seriesKey, err)
		}
		if s, ok := mod.Artifact.Lookup(seriesKey); ok {
			return Initial{Model: m.Name, Version: m.Version, Config: mod.Artifact.Config, State: s.State}, true, nil
		}
	}
	return Initial{}, false, nil
}

// InitialDevice is the starting state of one device's DeviceDetector.
type InitialDevice struct {
	Model   string
	Version int
	Config  detect.DeviceConfig
	Sensors []string // series keys in column order
	State   []byte   // detect.DeviceDetector.MarshalBinary
}

// Detector returns the DeviceDetector restored from d.
func (d InitialDevice) Detector() (*detect.DeviceDetector, error) {
	dd, err := restoreDevice(d.Config, d.Sensors, d.State)
	if err != nil {
		return nil, fmt.Errorf("model %s@%d: %w", d.Model, d.Version, err)
	}
	return dd, nil
}

// InitialDevice returns the learned device detector state of device from
// its active model; ok is false when there is none (no active model, or a
// device with fewer than two series).
func (r *Registry) InitialDevice(ctx context.Context, device string) (InitialDevice, bool, error) {
	name := DeviceScope(device).Name()
	m, ok, err := r.activeMeta(ctx, name)
	if err != nil || !ok {
		return InitialDevice{}, false, err
	}
	mod, err := r.load(ctx, m)
	if err != nil {
		return InitialDevice{}, false, fmt.Errorf("initial device state of %q: %w", device, err)
	}
	d := mod.Artifact.Device
	if d == nil {
		return InitialDevice{}, false, nil
	}
	return InitialDevice{Model: name, Version: m.Version, Config: d.Config, Sensors: slices.Clone(d.Sensors), State: d.State}, true, nil
}
