package config

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/workflows"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c := Load(env(nil))
	want := Config{DataDir: DefaultDataDir, LogLevel: "info", APIAddr: ":8080", DevAPIAddr: "127.0.0.1:8080",
		TemporalAddress: "127.0.0.1:7233", TemporalNamespace: "default", TaskQueue: workflows.TaskQueue,
		DevTemporalAddr: "127.0.0.1:7233", DevUIAddr: "127.0.0.1:8233"}
	if c != want {
		t.Fatalf("Load(empty) = %+v, want %+v", c, want)
	}
}

func TestLoadReadsAndTrims(t *testing.T) {
	c := Load(env(map[string]string{
		EnvAPIAddr: " 0.0.0.0:9999 ", EnvDataDir: "  ", EnvDatabaseURL: "postgres://x",
		EnvTemporalNamespace: "prod", EnvDevUIAddr: "127.0.0.1:1",
	}))
	if c.APIAddr != "0.0.0.0:9999" || c.DevAPIAddr != "0.0.0.0:9999" {
		t.Errorf("API addresses = %q, %q", c.APIAddr, c.DevAPIAddr)
	}
	if c.DataDir != DefaultDataDir {
		t.Errorf("blank %s gave %q, want the default", EnvDataDir, c.DataDir)
	}
	if c.DatabaseURL != "postgres://x" || c.TemporalNamespace != "prod" || c.DevUIAddr != "127.0.0.1:1" {
		t.Errorf("Load = %+v", c)
	}
}

func TestValidationNamesTheVariable(t *testing.T) {
	for _, tt := range []struct {
		name, key, val string
		check          func(*Config) error
	}{
		{"attempt timeout", EnvAttemptTimeout, "10m", func(c *Config) error { _, err := c.Delivery(); return err }},
		{"disable after", EnvDisableAfter, "-1h", func(c *Config) error { _, err := c.Delivery(); return err }},
		{"allowed targets", EnvAllowedTargets, "not-a-cidr", func(c *Config) error { _, err := c.Delivery(); return err }},
		{"reconcile interval", EnvReconcileInterval, "1ms", func(c *Config) error { _, err := c.Reconcile(); return err }},
		{"reconcile grace", EnvReconcileGrace, "soon", func(c *Config) error { _, err := c.Reconcile(); return err }},
		{"log level", EnvLogLevel, "loud", func(c *Config) error { _, err := c.Logger(io.Discard, false); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(map[string]string{tt.key: tt.val}))
			err := tt.check(&c)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if tt.key != EnvLogLevel && !strings.Contains(err.Error(), tt.key) {
				t.Errorf("err = %v, want it to name %s", err, tt.key)
			}
		})
	}
}

func TestProductionRequiresDatabaseURL(t *testing.T) {
	c := Load(env(nil))
	if _, _, err := c.Production("worker", io.Discard); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "DATABASE_URL is required for the worker role") {
		t.Fatalf("err = %v", err)
	}
	c = Load(env(map[string]string{EnvDatabaseURL: "postgres://x", EnvReconcileInterval: "bad"}))
	d, log, err := c.Production("api", io.Discard)
	if err != nil || log == nil || d.AttemptTimeout <= 0 || len(d.Schedule) == 0 {
		t.Fatalf("Production = %+v, %v, %v; a reconcile setting must not fail the api role", d, log, err)
	}
	def := Load(env(nil))
	r, _ := def.Reconcile()
	if r.Interval <= 0 || r.Grace < time.Millisecond {
		t.Fatalf("defaults = %+v", r)
	}
}
