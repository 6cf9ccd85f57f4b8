package config

import (
	"strings"
	"testing"
)

func TestDetectionSettings(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"off", func(c *Config) { c.Detection = "off" }, ""},
		{"bad_detection", func(c *Config) { c.Detection = "maybe" }, `detection: "maybe"`},
		{"webhook", func(c *Config) { c.WebhookURL = "https://hooks.example.com/vigil" }, ""},
		{"webhook_not_http", func(c *Config) { c.WebhookURL = "ftp://x/y" }, "webhook_url"},
		{"webhook_no_host", func(c *Config) { c.WebhookURL = "http://" }, "webhook_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	c := Default()
	c.WebhookKey = "hunter2-hook-key"
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "webhook-key=REDACTED") {
		t.Errorf("Config.String does not redact the webhook key:\n%s", s)
	}
	if got := EnvName("webhook-key"); got != "VIGIL_WEBHOOK_KEY" {
		t.Errorf("EnvName(webhook-key) = %q", got)
	}
}
