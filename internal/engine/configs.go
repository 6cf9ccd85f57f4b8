package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/vigil-iot/vigil/internal/appdb"
	"github.com/vigil-iot/vigil/internal/detect"
	"github.com/vigil-iot/vigil/internal/telemetry"
)

// Detector families of appdb.DetectorConfig the engine applies.
const (
	// DetectorEnsemble configures the per-series detector: Params are
	// overrides of detect.Config (its JSON field names).
	DetectorEnsemble = "ensemble"
	// DetectorDevice configures the per-device detector: Params are
	// overrides of detect.DeviceConfig.
	DetectorDevice = "device"
)

// detectorConfig is one usable appdb.DetectorConfig, decoded.
type detectorConfig struct {
	id      string
	scope   appdb.Scope
	enabled bool
	ens     detect.Config       // DetectorEnsemble
	dev     detect.DeviceConfig // DetectorDevice
}

// configSet is the detector configurations read at one refresh, by family,
// and the names of the models with an active version.
type configSet struct {
	ensemble, device []detectorConfig // in store order (oldest first)
	// models holds the model names with an active version when
	// Options.Models lists them (ModelNamer); nil: ask for every series.
	models map[string]bool
	// gen is the generation of the configurations: it grows when a
	// refresh reads configurations (ensemble or device) that differ from
	// the previous ones, and only then (not for models). A device whose
	// detectors were reconciled at gen needs no re-resolution.
	gen uint64
}

// ModelNamer is implemented by a Models source that lists the names of
// the models with an active version (*models.Registry): the engine then
// asks it for the initial state only of the series and devices that have
// one, instead of once for every new series.
type ModelNamer interface {
	Names(ctx context.Context, all bool) ([]string, error)
}

// hasModel reports whether the model name may have an active version.
func (set *configSet) hasModel(name string) bool { return set.models == nil || set.models[name] }

// configCache holds the current configSet and the problems already
// logged (by config ID and version), so a bad config is logged once.
type configCache struct {
	mu     sync.Mutex
	set    *configSet
	logged map[string]bool
}

// RefreshConfigs re-reads the detector configurations (appdb.DetectorConfig)
// from the application database, and the names of the active models when
// Options.Models is a ModelNamer. Run does it every ConfigRefresh; a
// failure keeps what was read before. When the configurations changed, the
// detectors of every device in memory are reconciled with them (see
// reconcile) before the device's next batch or silence check.
func (e *Engine) RefreshConfigs(ctx context.Context) error {
	var all []appdb.DetectorConfig
	f := appdb.DetectorConfigFilter{Page: appdb.Page{Limit: appdb.MaxLimit}}
	for {
		cs, next, err := e.db.Detectors().Find(ctx, f)
		if err != nil {
			return fmt.Errorf("refresh detector configurations: %w", err)
		}
		all = append(all, cs...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	set := &configSet{}
	if n, ok := e.models.(ModelNamer); ok {
		names, err := n.Names(ctx, false)
		if err != nil {
			return fmt.Errorf("refresh detector configurations: %w", err)
		}
		set.models = make(map[string]bool, len(names))
		for _, name := range names {
			set.models[name] = true
		}
	}
	e.cfgs.mu.Lock()
	defer e.cfgs.mu.Unlock()
	if e.cfgs.logged == nil {
		e.cfgs.logged = map[string]bool{}
	}
	for _, c := range all {
		dc, err := e.decodeConfig(c)
		if err != nil {
			if k := fmt.Sprintf("%s@%d", c.ID, c.Version); !e.cfgs.logged[k] {
				e.cfgs.logged[k] = true
				e.log.Error("ignoring detector configuration", "config", c.ID, "detector", c.Detector, "err", err)
			}
			continue
		}
		switch c.Detector {
		case DetectorEnsemble:
			set.ensemble = append(set.ensemble, dc)
		case DetectorDevice:
			set.device = append(set.device, dc)
		}
	}
	set.gen = 1
	if old := e.cfgs.set; old != nil {
		set.gen = old.gen
		if !reflect.DeepEqual(old.ensemble, set.ensemble) || !reflect.DeepEqual(old.device, set.device) {
			set.gen++
		}
	}
	e.cfgs.set = set
	return nil
}

// decodeConfig decodes c's params as overrides of the engine's detector
// configuration (Config.Ensemble or Config.Device) and validates the
// result.
func (e *Engine) decodeConfig(c appdb.DetectorConfig) (detectorConfig, error) {
	dc := detectorConfig{id: c.ID, scope: c.Scope, enabled: c.Enabled, ens: e.cfg.Ensemble, dev: e.cfg.Device}
	var target any
	var validate func() error
	switch c.Detector {
	case DetectorEnsemble:
		target, validate = &dc.ens, func() error { return dc.ens.Validate() }
	case DetectorDevice:
		target, validate = &dc.dev, func() error { return dc.dev.Validate() }
	default:
		return dc, fmt.Errorf("detector configuration %s: unknown detector %q (the engine runs %q and %q)", c.ID, c.Detector, DetectorEnsemble, DetectorDevice)
	}
	if len(bytes.TrimSpace(c.Params)) > 0 && !bytes.Equal(bytes.TrimSpace(c.Params), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(c.Params))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			// encoding/json names the unknown field: json: unknown field "x".
			return dc, fmt.Errorf("detector configuration %s: params: %w", c.ID, err)
		}
	}
	if err := validate(); err != nil {
		return dc, fmt.Errorf("detector configuration %s: params: %w", c.ID, err)
	}
	return dc, nil
}

// configs returns the current configSet, reading it first if it was never
// read (Process used without Run).
func (e *Engine) configs(ctx context.Context) (*configSet, error) {
	e.cfgs.mu.Lock()
	set := e.cfgs.set
	e.cfgs.mu.Unlock()
	if set != nil {
		return set, nil
	}
	if err := e.RefreshConfigs(ctx); err != nil {
		return nil, err
	}
	e.cfgs.mu.Lock()
	defer e.cfgs.mu.Unlock()
	return e.cfgs.set, nil
}

// specificity ranks how closely sc targets series s of device (or the
// device itself when s is nil): 4 series, 3 device, 2 tag selector, 1
// global, 0 not at all. Among selectors, more tags rank higher (the
// selector rank is 2 + tags / (tags+1), still below a device's).
func specificity(sc appdb.Scope, device string, s *telemetry.Series, key string) float64 {
	if !scopeCovers(sc, device, s) {
		return 0
	}
	switch sc.Kind {
	case appdb.ScopeSeries:
		if s != nil && sc.Target == key {
			return 4
		}
		return 0
	case appdb.ScopeDevice:
		return 3
	case appdb.ScopeSelector:
		n := float64(len(sc.Selector))
		return 2 + n/(n+1)
	}
	return 1
}

// resolve returns the most specific of cs covering series s (key) of
// device, or of the device when s is nil; among equally specific ones
// the newest wins. ok is false when none covers it.
func resolve(cs []detectorConfig, device string, s *telemetry.Series, key string) (detectorConfig, bool) {
	var best detectorConfig
	bestRank := 0.0
	for _, c := range cs {
		if r := specificity(c.scope, device, s, key); r > 0 && r >= bestRank {
			best, bestRank = c, r
		}
	}
	return best, bestRank > 0
}
