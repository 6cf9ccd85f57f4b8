// Package models is Vigil's model registry. A model is the learned state of
// the detectors of one scope — one series, or one device with all its series
// — obtained by feeding the scope's history from the time-series store
// through detect.Ensemble (per series) and detect.DeviceDetector (per
// device), then serialised.
//
// Each trained model is a version of its scope's model name ("series:<key>"
// or "device:<id>"): the artifact bytes go to the object store under
// models/<scope-hash>/<version>.bin (FORMAT.md, beside this package, specifies
// them) and the metadata — stage, SHA-256 checksum, training range, readings,
// detector configuration, format and code version, duration — to the
// application database. Versions move through the stages candidate → active
// → archived: Promote activates a version and archives the one active
// before, Rollback re-activates the previous one, Prune keeps the newest N
// and never the active one.
//
// Loads go through the cache: artifacts by (name, version), which never
// change, and the active version of each name for Options.ActiveTTL, so the
// live engine does not reach the object store per series. Every artifact is
// checked against the checksum in its metadata; a mismatch is ErrCorrupt,
// never a model.
//
// # Use by the live engine
//
// For a series without a detection checkpoint, the engine calls
// InitialState(ctx, seriesKey): it returns the state and detector
// configuration of the series in the active model of the series (or, failing
// that, of its device), and Initial.Ensemble builds the detector from it. A
// series with a checkpoint resumes from the checkpoint instead: a model is a
// starting point, not an override. InitialDevice does the same for the
// multivariate detector of a device. Both answer from the cache after the
// first call per name, including "no model" answers.
package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// Error kinds. Registry methods wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no model version has the name and version given, or the
	// name has no active version.
	ErrNotFound = errors.New("model not found")
	// ErrCorrupt: an artifact does not match the checksum recorded in its
	// metadata, or cannot be decoded.
	ErrCorrupt = errors.New("model artifact corrupt")
	// ErrNoData: the scope has no readings in the range asked for.
	ErrNoData = errors.New("no readings in range")
	// ErrNoPrevious: Rollback found no earlier version to re-activate.
	ErrNoPrevious = errors.New("no previous version to roll back to")
	// ErrInvalid: a scope, name, range or option is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the registry was built without a store the operation
	// needs (e.g. training without a time-series store).
	ErrUnavailable = errors.New("store not available")
)

// ScopeKind is what a model covers.
type ScopeKind string

// Scope kinds.
const (
	// ScopeSeries: one series, Target is its key.
	ScopeSeries ScopeKind = "series"
	// ScopeDevice: every series whose device tag is Target, plus the
	// device's multivariate detector.
	ScopeDevice ScopeKind = "device"
)

// Scope names what a model covers.
type Scope struct {
	Kind   ScopeKind
	Target string // series key or device ID
}

// SeriesScope returns the scope of the series with key.
func SeriesScope(key string) Scope { return Scope{Kind: ScopeSeries, Target: key} }

// DeviceScope returns the scope of device id.
func DeviceScope(id string) Scope { return Scope{Kind: ScopeDevice, Target: id} }

// Name returns the model name of the scope: "series:<key>" or
// "device:<id>".
func (s Scope) Name() string { return string(s.Kind) + ":" + s.Target }

// String returns s.Name().
func (s Scope) String() string { return s.Name() }

// Validate reports, wrapping ErrInvalid, an unknown kind or a target that
// is empty or too long to be a name.
func (s Scope) Validate() error {
	switch s.Kind {
	case ScopeSeries, ScopeDevice:
	default:
		return fmt.Errorf("scope %q: %w: unknown kind %q (want series or device)", s.Name(), ErrInvalid, s.Kind)
	}
	if s.Target == "" {
		return fmt.Errorf("scope %q: %w: empty %s", s.Name(), ErrInvalid, s.Kind)
	}
	if len(s.Name()) > appdb.MaxIDLen {
		return fmt.Errorf("scope %.60q...: %w: name is %d bytes, longer than %d", s.Name(), ErrInvalid, len(s.Name()), appdb.MaxIDLen)
	}
	return nil
}

// ParseName returns the scope a model name stands for.
func ParseName(name string) (Scope, error) {
	kind, target, ok := strings.Cut(name, ":")
	s := Scope{Kind: ScopeKind(kind), Target: target}
	if !ok {
		return Scope{}, fmt.Errorf("model name %q: %w: want series:<key> or device:<id>", name, ErrInvalid)
	}
	if err := s.Validate(); err != nil {
		return Scope{}, err
	}
	return s, nil
}

func (s Scope) db() appdb.Scope {
	if s.Kind == ScopeDevice {
		return appdb.Scope{Kind: appdb.ScopeDevice, Target: s.Target}
	}
	return appdb.Scope{Kind: appdb.ScopeSeries, Target: s.Target}
}

// Stage is the lifecycle stage of a model version.
type Stage = appdb.ModelStage

// Stages.
const (
	StageCandidate = appdb.StageCandidate
	StageActive    = appdb.StageActive
	StageArchived  = appdb.StageArchived
)

// Training is the metadata of a training run, stored as JSON with the
// model's metadata.
type Training struct {
	// Range is the time range asked for, [Start, End) in Unix ms.
	Range timeseries.Range `json:"range"`
	// First and Last are the times of the first and last reading used.
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	// Readings is the number of readings fed to the detectors; Series the
	// number of series and Warm how many of them finished their warm-up.
	Readings int64 `json:"readings"`
	Series   int   `json:"series"`
	Warm     int   `json:"warm"`
	// DeviceRows is the number of rows fed to the device detector (device
	// scope only).
	DeviceRows int64 `json:"device_rows,omitempty"`
	// Config and DeviceConfig are the detector configurations trained.
	Config       detect.Config        `json:"config"`
	DeviceConfig *detect.DeviceConfig `json:"device_config,omitempty"`
	// Format is the artifact format version; Code the Vigil version that
	// trained the model.
	Format int    `json:"format"`
	Code   string `json:"code"`
	// Duration is how long training took; Size the artifact size in bytes.
	Duration time.Duration `json:"duration_ns"`
	Size     int           `json:"size"`
}

// Meta is the registry record of one model version.
type Meta struct {
	Name        string
	Version     int
	Scope       Scope
	Stage       Stage
	Checksum    string // "sha256:<hex>" of the artifact bytes
	ArtifactKey string // object store key
	Training    Training
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// detectorName is stored as ModelMeta.Detector.
func detectorName(k ScopeKind) string {
	if k == ScopeDevice {
		return "ensemble+device"
	}
	return "ensemble"
}

func (m Meta) db() (appdb.ModelMeta, error) {
	tr, err := json.Marshal(m.Training)
	if err != nil {
		return appdb.ModelMeta{}, fmt.Errorf("encode training metadata of %s@%d: %w", m.Name, m.Version, err)
	}
	return appdb.ModelMeta{
		Name:         m.Name,
		ModelVersion: m.Version,
		Detector:     detectorName(m.Scope.Kind),
		Scope:        m.Scope.db(),
		Stage:        m.Stage,
		Checksum:     m.Checksum,
		ArtifactKey:  m.ArtifactKey,
		Training:     tr,
	}, nil
}

func fromDB(d appdb.ModelMeta) (Meta, error) {
	m := Meta{
		Name: d.Name, Version: d.ModelVersion, Stage: d.Stage, Checksum: d.Checksum,
		ArtifactKey: d.ArtifactKey, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	s, err := ParseName(d.Name)
	if err != nil {
		return Meta{}, fmt.Errorf("model %s@%d: %w", d.Name, d.ModelVersion, err)
	}
	m.Scope = s
	if len(d.Training) > 0 {
		if err := json.Unmarshal(d.Training, &m.Training); err != nil {
			return Meta{}, fmt.Errorf("model %s@%d: training metadata: %w: %w", d.Name, d.ModelVersion, ErrCorrupt, err)
		}
	}
	return m, nil
}
