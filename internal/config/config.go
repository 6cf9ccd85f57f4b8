// Package config holds Vigil's typed configuration: Default() is a complete
// embedded setup; a JSON config file, VIGIL_* environment variables and
// command-line flags override it, in that order (file < env < flags).
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is the whole configuration of a Vigil process.
type Config struct {
	// DataDir holds every embedded store (default ./vigil-data).
	DataDir string `json:"data_dir"`
	// Store URLs. The scheme chooses the backend; see Schemes.
	TSDB    string `json:"tsdb"`
	AppDB   string `json:"appdb"`
	Objects string `json:"objects"`
	Cache   string `json:"cache"`
	Bus     string `json:"bus"`

	// HTTPAddr is the listen address of the HTTP API (InfluxDB's port by
	// default, so that clients configured for InfluxDB find Vigil).
	HTTPAddr string `json:"http_addr"`

	// Retention deletes samples older than this; 0 keeps everything.
	Retention Duration `json:"retention"`
	// OutOfOrderWindow is how late a reading may arrive and still be stored.
	OutOfOrderWindow Duration `json:"out_of_order_window"`
	// MaxFutureSkew is how far ahead of the server clock a timestamp may be.
	MaxFutureSkew Duration `json:"max_future_skew"`

	// MQTTBroker, when set, is an external MQTT broker to subscribe to
	// (tcp://host:1883, tcp://user:pass@host:1883).
	MQTTBroker string `json:"mqtt_broker"`
	// MQTTListen, when set, runs the embedded MQTT broker on this address
	// (e.g. :1883); devices log in with their device ID and a write token.
	MQTTListen string `json:"mqtt_listen"`
	// MQTTTopic is the topic template, with one {device} level.
	MQTTTopic string `json:"mqtt_topic"`
	// MQTTClientID is Vigil's session name at the external broker.
	MQTTClientID string `json:"mqtt_client_id"`
	// MQTTNotifyTopic, when set, is the topic template, with one {device}
	// level, on which every anomaly notification is published (QoS 1, the
	// webhook's JSON): to the embedded broker when MQTTListen is set (even
	// if MQTTBroker is set too), otherwise to the external broker of
	// MQTTBroker, by the client MQTTClientID + "-notify".
	MQTTNotifyTopic string `json:"mqtt_notify_topic"`

	// Detection is "on" (score every stored reading and record anomaly
	// events) or "off".
	Detection string `json:"detection"`
	// WebhookURL, when set, receives every anomaly notification (open,
	// escalate, close) as a signed JSON POST.
	WebhookURL string `json:"webhook_url"`
	// WebhookKey is the shared secret keying the HMAC-SHA256
	// X-Vigil-Signature of webhook requests. It is redacted when the
	// configuration is printed.
	WebhookKey string `json:"webhook_key"`

	// TrainEvery, when positive, trains a candidate model for every device
	// with recent history at this interval (promotion stays a decision:
	// vigil backtest, then vigil models promote).
	TrainEvery Duration `json:"train_every"`
	// TrainWindow is how much history scheduled training reads.
	TrainWindow Duration `json:"train_window"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
}

// Default returns the embedded configuration: every store inside the process,
// under ./vigil-data.
func Default() Config {
	return Config{
		DataDir:          "vigil-data",
		TSDB:             "embedded:",
		AppDB:            "sqlite:",
		Objects:          "file:",
		Cache:            "mem:",
		Bus:              "mem:",
		HTTPAddr:         ":8086",
		Retention:        0,
		OutOfOrderWindow: Duration(24 * time.Hour),
		MaxFutureSkew:    Duration(10 * time.Minute),
		MQTTTopic:        "vigil/{device}/telemetry",
		TrainWindow:      Duration(7 * 24 * time.Hour),
		MQTTClientID:     "vigil-ingest",
		Detection:        "on",
		LogLevel:         "info",
	}
}

// Schemes lists, per store, the URL schemes this build supports.
var schemes = map[string][]string{
	"tsdb":    {"embedded"},
	"appdb":   {"sqlite"},
	"objects": {"file", "mem"},
	"cache":   {"mem", "redis", "rediss"},
	"bus":     {"mem"},
}

// Schemes returns the URL schemes this build supports for store (tsdb,
// appdb, objects, cache, bus).
func Schemes(store string) []string { return slices.Clone(schemes[store]) }

// Duration is a time.Duration that reads and writes as a Go duration string
// ("24h", "90m"); a plain number in JSON is seconds. "30d" style day counts
// are accepted too.
type Duration time.Duration

// ParseDuration parses s as a Go duration, or as an integer followed by "d"
// for days.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int64
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (examples: 90s, 15m, 24h, 30d)", s)
	}
	return Duration(d), nil
}

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like \"24h\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// setting ties one Config field to its flag and environment variable.
type setting struct {
	name  string // flag name; env is VIGIL_ + upper(name with - → _)
	usage string
	ptr   func(c *Config) any // *string or *Duration
}

func settings() []setting {
	return []setting{
		{"data-dir", "directory of the embedded stores", func(c *Config) any { return &c.DataDir }},
		{"tsdb", "time-series store URL (" + strings.Join(schemes["tsdb"], ", ") + ")", func(c *Config) any { return &c.TSDB }},
		{"appdb", "application database URL (" + strings.Join(schemes["appdb"], ", ") + ")", func(c *Config) any { return &c.AppDB }},
		{"objects", "object store URL (" + strings.Join(schemes["objects"], ", ") + ")", func(c *Config) any { return &c.Objects }},
		{"cache", "cache URL (" + strings.Join(schemes["cache"], ", ") + ")", func(c *Config) any { return &c.Cache }},
		{"bus", "message bus URL (" + strings.Join(schemes["bus"], ", ") + ")", func(c *Config) any { return &c.Bus }},
		{"http-addr", "HTTP listen address", func(c *Config) any { return &c.HTTPAddr }},
		{"retention", "delete samples older than this (0 keeps all; e.g. 30d)", func(c *Config) any { return &c.Retention }},
		{"out-of-order-window", "accept readings up to this late", func(c *Config) any { return &c.OutOfOrderWindow }},
		{"max-future-skew", "reject readings further ahead of the server clock", func(c *Config) any { return &c.MaxFutureSkew }},
		{"mqtt-broker", "external MQTT broker to subscribe to, e.g. tcp://127.0.0.1:1883 (empty: off)", func(c *Config) any { return &c.MQTTBroker }},
		{"mqtt-listen", "run the embedded MQTT broker on this address, e.g. :1883 (empty: off)", func(c *Config) any { return &c.MQTTListen }},
		{"mqtt-topic", "MQTT topic template with one {device} level", func(c *Config) any { return &c.MQTTTopic }},
		{"mqtt-client-id", "client ID of Vigil's persistent session at the external broker", func(c *Config) any { return &c.MQTTClientID }},
		{"mqtt-notify-topic", "publish anomaly notifications on this MQTT topic template with one {device} level, e.g. vigil/anomalies/{device} (empty: off)", func(c *Config) any { return &c.MQTTNotifyTopic }},
		{"detection", "score every stored reading and record anomaly events: on or off", func(c *Config) any { return &c.Detection }},
		{"webhook-url", "POST anomaly notifications to this URL (empty: off)", func(c *Config) any { return &c.WebhookURL }},
		{"webhook-key", "shared secret keying the HMAC-SHA256 X-Vigil-Signature of webhook requests", func(c *Config) any { return &c.WebhookKey }},
		{"train-every", "train candidate models for every device at this interval, e.g. 24h (0: off)", func(c *Config) any { return &c.TrainEvery }},
		{"train-window", "history read by scheduled training", func(c *Config) any { return &c.TrainWindow }},
		{"log-level", "debug, info, warn or error", func(c *Config) any { return &c.LogLevel }},
	}
}

// validateNotifyTopic checks MQTTNotifyTopic: a topic to publish on (no
// wildcard) with one {device} level, a broker to publish to (embedded or
// external), and no
// overlap with the telemetry topic (Vigil would ingest its own
// notifications; a device named like a literal level of mqtt_topic is not
// caught).
func (c Config) validateNotifyTopic() []error {
	if c.MQTTNotifyTopic == "" {
		return nil
	}
	var errs []error
	levels := strings.Split(c.MQTTNotifyTopic, "/")
	devices := 0
	for _, l := range levels {
		switch {
		case l == "{device}":
			devices++
		case strings.ContainsAny(l, "+#{}"):
			errs = append(errs, fmt.Errorf("mqtt_notify_topic: %q: level %q: only literal levels and one {device} are allowed (no wildcards), e.g. vigil/anomalies/{device}", c.MQTTNotifyTopic, l))
		}
	}
	if devices != 1 {
		errs = append(errs, fmt.Errorf("mqtt_notify_topic: %q needs exactly one {device} level, e.g. vigil/anomalies/{device}", c.MQTTNotifyTopic))
	}
	if c.MQTTBroker == "" && c.MQTTListen == "" {
		errs = append(errs, fmt.Errorf("mqtt_notify_topic: %q: no MQTT broker to publish to; set mqtt_listen (the embedded broker) or mqtt_broker", c.MQTTNotifyTopic))
	}
	if c.MQTTBroker != "" || c.MQTTListen != "" {
		if ingest := strings.Split(c.MQTTTopic, "/"); len(ingest) == len(levels) {
			overlap := true
			for i, l := range ingest {
				if l != levels[i] && l != "+" && l != "{device}" {
					overlap = false
				}
			}
			if overlap {
				errs = append(errs, fmt.Errorf("mqtt_notify_topic: %q overlaps mqtt_topic %q: Vigil would ingest its own notifications as telemetry", c.MQTTNotifyTopic, c.MQTTTopic))
			}
		}
	}
	return errs
}

// EnvName returns the environment variable of a flag name.
func EnvName(flagName string) string {
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags registers every setting (plus -config) on fs. Call Load after
// fs.Parse.
type Flags struct {
	fs     *flag.FlagSet
	values Config
	file   string
}

// RegisterFlags adds Vigil's settings and -config to fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: Default()}
	fs.StringVar(&f.file, "config", "", "JSON config file (env: VIGIL_CONFIG)")
	for _, s := range settings() {
		usage := s.usage + " (env: " + EnvName(s.name) + ")"
		switch p := s.ptr(&f.values).(type) {
		case *string:
			fs.StringVar(p, s.name, *p, usage)
		case *Duration:
			fs.Var(durationFlag{p}, s.name, usage)
		}
	}
	return f
}

type durationFlag struct{ d *Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// Load builds the Config: defaults, then the config file (from -config or
// VIGIL_CONFIG), then the environment (looked up with getenv), then the
// flags the user set. It validates the result.
func (f *Flags) Load(getenv func(string) string) (Config, error) {
	c := Default()
	file := f.file
	if file == "" {
		file = getenv("VIGIL_CONFIG")
	}
	if file != "" {
		if err := loadFile(file, &c); err != nil {
			return Config{}, err
		}
	}
	var errs []error
	for _, s := range settings() {
		v := getenv(EnvName(s.name))
		if v == "" {
			continue
		}
		if err := set(s.ptr(&c), v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvName(s.name), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	byName := map[string]setting{}
	for _, s := range settings() {
		byName[s.name] = s
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if s, ok := byName[fl.Name]; ok {
			// The flag already parsed into f.values; copy the field over.
			copyField(s.ptr(&c), s.ptr(&f.values))
		}
	})
	return c, c.Validate()
}

func set(p any, v string) error {
	switch p := p.(type) {
	case *string:
		*p = v
	case *Duration:
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	}
	return nil
}

func copyField(dst, src any) {
	switch d := dst.(type) {
	case *string:
		*d = *src.(*string)
	case *Duration:
		*d = *src.(*Duration)
	}
}

func loadFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	for _, st := range []struct{ name, url string }{
		{"tsdb", c.TSDB}, {"appdb", c.AppDB}, {"objects", c.Objects}, {"cache", c.Cache}, {"bus", c.Bus},
	} {
		scheme, err := Scheme(st.url)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
			continue
		}
		if !slices.Contains(schemes[st.name], scheme) {
			errs = append(errs, fmt.Errorf("%s: unknown scheme %q in %q (valid: %s)", st.name, scheme, Redact(st.url), strings.Join(schemes[st.name], ", ")))
		}
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("http_addr: must not be empty"))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention: %v is negative", c.Retention))
	}
	if c.OutOfOrderWindow < 0 {
		errs = append(errs, fmt.Errorf("out_of_order_window: %v is negative", c.OutOfOrderWindow))
	}
	if c.MaxFutureSkew < 0 {
		errs = append(errs, fmt.Errorf("max_future_skew: %v is negative", c.MaxFutureSkew))
	}
	if (c.MQTTBroker != "" || c.MQTTListen != "") && !strings.Contains(c.MQTTTopic, "{device}") {
		errs = append(errs, fmt.Errorf("mqtt_topic: %q needs a {device} level, e.g. vigil/{device}/telemetry", c.MQTTTopic))
	}
	errs = append(errs, c.validateNotifyTopic()...)
	if c.Detection != "on" && c.Detection != "off" {
		errs = append(errs, fmt.Errorf("detection: %q is neither on nor off", c.Detection))
	}
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook_url: %q is not an http(s) URL", Redact(c.WebhookURL)))
		}
	}
	if c.TrainEvery < 0 || c.TrainWindow <= 0 {
		errs = append(errs, fmt.Errorf("train_every %v / train_window %v: want train_every ≥ 0 and a positive train_window", c.TrainEvery, c.TrainWindow))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Scheme returns the scheme of a store URL ("embedded:" → "embedded").
func Scheme(u string) (string, error) {
	scheme, _, ok := strings.Cut(u, ":")
	if !ok || scheme == "" {
		return "", fmt.Errorf("%q has no scheme (want e.g. embedded:, sqlite:, file:, mem:)", Redact(u))
	}
	return strings.ToLower(scheme), nil
}

// Path returns the path part of an embedded store URL, resolved against
// dataDir: "sqlite:" → dataDir/def, "sqlite:/abs/x.db" → /abs/x.db,
// "file:rel" → dataDir/rel, "file:///abs" → /abs.
func Path(u, dataDir, def string) string {
	_, rest, _ := strings.Cut(u, ":")
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" {
		return filepath.Join(dataDir, def)
	}
	if filepath.IsAbs(rest) {
		return rest
	}
	return filepath.Join(dataDir, rest)
}

// Redact hides a password in a URL, for logs and errors.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

// String prints c with secrets redacted, one setting per line.
func (c Config) String() string {
	var b strings.Builder
	for _, s := range settings() {
		var v string
		switch p := s.ptr(&c).(type) {
		case *string:
			v = Redact(*p)
			if s.name == "webhook-key" && *p != "" {
				v = "REDACTED"
			}
		case *Duration:
			v = p.String()
		}
		fmt.Fprintf(&b, "%s=%s\n", s.name, v)
	}
	return b.String()
}
