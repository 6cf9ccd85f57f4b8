package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f.Load(func(k string) string { return env[k] })
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vigil.json")
	if err := os.WriteFile(file, []byte(`{"data_dir":"/from-file","http_addr":":1","retention":"7d","log_level":"warn"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(c *Config)
	}{
		{"defaults", nil, nil, func(c *Config) {}},
		{"file", []string{"-config", file}, nil, func(c *Config) {
			c.DataDir, c.HTTPAddr, c.Retention, c.LogLevel = "/from-file", ":1", Duration(7*24*time.Hour), "warn"
		}},
		{"env over file", []string{"-config", file}, map[string]string{"VIGIL_DATA_DIR": "/from-env", "VIGIL_RETENTION": "48h"}, func(c *Config) {
			c.DataDir, c.HTTPAddr, c.Retention, c.LogLevel = "/from-env", ":1", Duration(48*time.Hour), "warn"
		}},
		{"flags over env", []string{"-config", file, "-data-dir", "/from-flag", "-retention", "1h"}, map[string]string{"VIGIL_DATA_DIR": "/from-env"}, func(c *Config) {
			c.DataDir, c.HTTPAddr, c.Retention, c.LogLevel = "/from-flag", ":1", Duration(time.Hour), "warn"
		}},
		{"config file from env", nil, map[string]string{"VIGIL_CONFIG": file}, func(c *Config) {
			c.DataDir, c.HTTPAddr, c.Retention, c.LogLevel = "/from-file", ":1", Duration(7*24*time.Hour), "warn"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := load(t, []string{"-tsdb", "cassandra://x", "-bus", "nope", "-log-level", "loud"}, nil)
	if err == nil {
		t.Fatal("Load with three bad settings: got nil error")
	}
	for _, want := range []string{`tsdb: unknown scheme "cassandra"`, "valid: embedded", `bus: "nope" has no scheme`, `log_level: "loud"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestStrictFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vigil.json")
	if err := os.WriteFile(file, []byte(`{"data_dri":"/typo"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := load(t, []string{"-config", file}, nil)
	if err == nil || !strings.Contains(err.Error(), "data_dri") {
		t.Fatalf("unknown key in config file: got %v, want an error naming data_dri", err)
	}
}

func TestBadEnvNamesVariable(t *testing.T) {
	_, err := load(t, nil, map[string]string{"VIGIL_RETENTION": "forever"})
	if err == nil || !strings.Contains(err.Error(), "VIGIL_RETENTION") {
		t.Fatalf("bad VIGIL_RETENTION: got %v, want an error naming the variable", err)
	}
}

func TestPathAndRedact(t *testing.T) {
	tests := []struct{ url, want string }{
		{"sqlite:", filepath.Join("data", "vigil.db")},
		{"sqlite:other.db", filepath.Join("data", "other.db")},
		{"sqlite:/abs/x.db", "/abs/x.db"},
		{"file:///abs/objects", "/abs/objects"},
	}
	for _, tt := range tests {
		if got := Path(tt.url, "data", "vigil.db"); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	if got := Redact("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("Redact leaked the password: %q", got)
	}
	c := Default()
	c.AppDB = "postgres://u:secret@h/db"
	if strings.Contains(c.String(), "secret") {
		t.Errorf("Config.String leaked the password:\n%s", c)
	}
}

func TestMQTTNotifyTopic(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vigil.json")
	if err := os.WriteFile(file, []byte(`{"mqtt_broker":"tcp://127.0.0.1:1883","mqtt_notify_topic":"file/{device}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("file env flag", func(t *testing.T) {
		for _, c := range []struct {
			name string
			args []string
			env  map[string]string
			want string
		}{
			{"file", []string{"-config", file}, nil, "file/{device}"},
			{"env", []string{"-config", file}, map[string]string{"VIGIL_MQTT_NOTIFY_TOPIC": "env/{device}"}, "env/{device}"},
			{"flag", []string{"-config", file, "-mqtt-notify-topic", "flag/{device}"}, map[string]string{"VIGIL_MQTT_NOTIFY_TOPIC": "env/{device}"}, "flag/{device}"},
		} {
			got, err := load(t, c.args, c.env)
			if err != nil {
				t.Fatalf("%s: Load: %v", c.name, err)
			}
			if got.MQTTNotifyTopic != c.want {
				t.Errorf("%s: mqtt_notify_topic = %q, want %q", c.name, got.MQTTNotifyTopic, c.want)
			}
		}
	})
	const broker = "tcp://127.0.0.1:1883"
	for _, c := range []struct {
		name, broker, listen, topic string
		want                        []string // substrings of the error; none: valid
	}{
		{"off", "", "", "", nil},
		{"external broker", broker, "", "vigil/anomalies/{device}", nil},
		{"both brokers", broker, ":1883", "vigil/anomalies/{device}", nil},
		{"no device level", broker, "", "vigil/anomalies", []string{"exactly one {device}"}},
		{"two device levels", broker, "", "{device}/a/{device}", []string{"exactly one {device}"}},
		{"wildcard", broker, "", "vigil/+/{device}/#", []string{`level "+"`, `level "#"`}},
		{"no broker", "", "", "vigil/anomalies/{device}", []string{"set mqtt_listen (the embedded broker) or mqtt_broker"}},
		{"embedded broker only", "", ":1883", "vigil/anomalies/{device}", nil},
		{"overlaps telemetry", broker, "", "vigil/{device}/telemetry", []string{"overlaps mqtt_topic"}},
		{"overlaps telemetry on embedded broker", "", ":1883", "vigil/{device}/telemetry", []string{"overlaps mqtt_topic"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.MQTTBroker, cfg.MQTTListen, cfg.MQTTNotifyTopic = c.broker, c.listen, c.topic
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Errorf("Validate(%q) = %v, want nil", c.topic, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want an error mentioning %q", c.topic, c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%q) = %q, want it to mention %q", c.topic, err, w)
				}
			}
		})
	}
}
