// Package config is the one typed configuration of the streamhooks binary:
// every environment variable of every command, read once by Load from an
// injected getenv, and the validated views each command takes of it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/workflows"
)

// ErrUsage marks errors caused by wrong command-line use or settings; the
// binary exits 2 on them. Its text stays "usage" because every such message
// has always read "streamhooks: usage: ...".
var ErrUsage = errors.New("usage")

// Environment variables, shared by every command.
const (
	EnvDatabaseURL = "DATABASE_URL"
	EnvDataDir     = "STREAMHOOKS_DATA_DIR"
	EnvAPIAddr     = "STREAMHOOKS_API_ADDR"
	EnvLogLevel    = "STREAMHOOKS_LOG_LEVEL"

	EnvTemporalAddress   = "TEMPORAL_ADDRESS"
	EnvTemporalNamespace = "TEMPORAL_NAMESPACE"
	EnvRetrySchedule     = "STREAMHOOKS_RETRY_SCHEDULE"
	EnvAttemptTimeout    = "STREAMHOOKS_ATTEMPT_TIMEOUT"
	EnvAllowedTargets    = "STREAMHOOKS_ALLOWED_TARGET_CIDRS"
	EnvDisableAfter      = "STREAMHOOKS_DISABLE_AFTER"
	EnvMetricsAddr       = "STREAMHOOKS_METRICS_ADDR"
	EnvTaskQueue         = "STREAMHOOKS_TASK_QUEUE"
	EnvSecretKey         = "STREAMHOOKS_SECRET_KEY"
	EnvReconcileInterval = "STREAMHOOKS_RECONCILE_INTERVAL"
	EnvReconcileGrace    = "STREAMHOOKS_RECONCILE_GRACE"
	EnvRetention         = "STREAMHOOKS_RETENTION"

	// Dev-mode only (flags win).
	EnvDevTemporalAddr = "STREAMHOOKS_TEMPORAL_ADDR"
	EnvDevUIAddr       = "STREAMHOOKS_UI_ADDR"
)

// DefaultDataDir is where the dev mode keeps its databases.
const DefaultDataDir = ".streamhooks"

// Config is every setting of every command, loaded once from the
// environment and then from flags (flags win). Settings that need parsing
// stay raw here and are validated by the view of the command that uses them
// (Delivery, Reconcile, Production), so that migrate, say, does not fail on
// a worker-only variable.
type Config struct {
	DatabaseURL string
	DataDir     string
	LogLevel    string
	// APIAddr is the api role's listen address (default ":8080"),
	// DevAPIAddr the dev mode's (default "127.0.0.1:8080"): both come from
	// STREAMHOOKS_API_ADDR.
	APIAddr    string
	DevAPIAddr string

	TemporalAddress   string
	TemporalNamespace string
	RetrySchedule     string // parsed by Delivery()
	AttemptTimeout    string
	AllowedTargets    string
	DisableAfter      string
	MetricsAddr       string
	TaskQueue         string
	SecretKey         string
	ReconcileInterval string // parsed by Reconcile()
	ReconcileGrace    string
	Retention         string // parsed by RetentionPeriod()

	// DevTemporalAddr and DevUIAddr are where the dev mode's embedded
	// Temporal frontend and UI listen.
	DevTemporalAddr string
	DevUIAddr       string
}

// Load reads the environment through getenv (os.Getenv in main, a map in
// tests). Commands then register flags on top.
func Load(getenv func(string) string) Config {
	or := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	return Config{
		DatabaseURL: getenv(EnvDatabaseURL),
		DataDir:     or(EnvDataDir, DefaultDataDir),
		LogLevel:    or(EnvLogLevel, "info"),
		APIAddr:     or(EnvAPIAddr, ":8080"),
		DevAPIAddr:  or(EnvAPIAddr, "127.0.0.1:8080"),

		TemporalAddress:   or(EnvTemporalAddress, "127.0.0.1:7233"),
		TemporalNamespace: or(EnvTemporalNamespace, "default"),
		RetrySchedule:     getenv(EnvRetrySchedule),
		AttemptTimeout:    or(EnvAttemptTimeout, ""),
		AllowedTargets:    getenv(EnvAllowedTargets),
		DisableAfter:      getenv(EnvDisableAfter),
		MetricsAddr:       getenv(EnvMetricsAddr),
		TaskQueue:         or(EnvTaskQueue, workflows.TaskQueue),
		SecretKey:         getenv(EnvSecretKey),
		ReconcileInterval: getenv(EnvReconcileInterval),
		ReconcileGrace:    getenv(EnvReconcileGrace),
		Retention:         getenv(EnvRetention),

		DevTemporalAddr: or(EnvDevTemporalAddr, "127.0.0.1:7233"),
		DevUIAddr:       or(EnvDevUIAddr, "127.0.0.1:8233"),
	}
}

// Reconcile is the validated reconciler settings of a worker.
type Reconcile struct {
	Interval time.Duration
	Grace    time.Duration
}

// Reconcile parses the reconciler settings (defaults when unset).
func (c *Config) Reconcile() (Reconcile, error) {
	r := Reconcile{Interval: service.DefaultReconcileInterval, Grace: service.DefaultGrace}
	for _, v := range []struct {
		name, raw string
		dst       *time.Duration
	}{{EnvReconcileInterval, c.ReconcileInterval, &r.Interval}, {EnvReconcileGrace, c.ReconcileGrace, &r.Grace}} {
		if v.raw == "" {
			continue
		}
		d, err := time.ParseDuration(v.raw)
		if err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
			return r, fmt.Errorf("%w: %s=%q: want a duration between 100ms and 24h", ErrUsage, v.name, v.raw)
		}
		*v.dst = d
	}
	return r, nil
}

// RetentionPeriod parses STREAMHOOKS_RETENTION (default 720h): how long
// ended events are kept. At least an hour, so a typo such as "30s" cannot
// delete what a customer is still looking at.
func (c *Config) RetentionPeriod() (time.Duration, error) {
	if c.Retention == "" {
		return models.DefaultRetention, nil
	}
	d, err := time.ParseDuration(c.Retention)
	if err != nil || d < time.Hour {
		return 0, fmt.Errorf("%w: %s=%q: want a duration of at least 1h, such as 720h", ErrUsage, EnvRetention, c.Retention)
	}
	return d, nil
}

// Delivery is the validated delivery settings of a worker.
type Delivery struct {
	Schedule       []time.Duration
	AttemptTimeout time.Duration
	Allowed        []netip.Prefix
	DisableAfter   time.Duration
}

// Delivery parses and validates the delivery settings, failing with a
// message that names the variable.
func (c *Config) Delivery() (Delivery, error) {
	var d Delivery
	var err error
	if d.Schedule, err = activities.ParseSchedule(c.RetrySchedule); err != nil {
		return d, fmt.Errorf("%w: %s: %v", ErrUsage, EnvRetrySchedule, err)
	}
	d.AttemptTimeout = activities.DefaultAttemptTimeout
	if c.AttemptTimeout != "" {
		if d.AttemptTimeout, err = time.ParseDuration(c.AttemptTimeout); err != nil || d.AttemptTimeout <= 0 || d.AttemptTimeout > activities.MaxAttemptTimeout {
			return d, fmt.Errorf("%w: %s=%q: want a duration between 1ms and 5m", ErrUsage, EnvAttemptTimeout, c.AttemptTimeout)
		}
	}
	if d.Allowed, err = egress.ParseCIDRs(c.AllowedTargets); err != nil {
		return d, fmt.Errorf("%w: %s: %v", ErrUsage, EnvAllowedTargets, err)
	}
	d.DisableAfter = activities.DefaultDisableAfter
	if c.DisableAfter != "" {
		if d.DisableAfter, err = time.ParseDuration(c.DisableAfter); err != nil || d.DisableAfter < 0 {
			return d, fmt.Errorf("%w: %s=%q: want a duration such as 120h (0 never disables)", ErrUsage, EnvDisableAfter, c.DisableAfter)
		}
	}
	return d, nil
}

// Production validates what the api and worker roles share before either
// touches the network or the database: DATABASE_URL is set and the
// delivery settings and log level parse. It returns the delivery settings
// and the process logger (JSON lines on stderr).
func (c *Config) Production(role string, stderr io.Writer) (Delivery, *slog.Logger, error) {
	if c.DatabaseURL == "" {
		return Delivery{}, nil, fmt.Errorf("%w: DATABASE_URL is required for the %s role (postgres://...)", ErrUsage, role)
	}
	d, err := c.Delivery()
	if err != nil {
		return d, nil, err
	}
	log, err := c.Logger(stderr, false)
	if err != nil {
		return d, nil, err
	}
	return d, log, nil
}

// Logger returns the process logger at the configured level: JSON lines
// for the production roles, readable text lines for a person (dev).
func (c *Config) Logger(w io.Writer, text bool) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(c.LogLevel))); err != nil {
		return nil, fmt.Errorf("%w: log level %q: want debug, info, warn or error", ErrUsage, c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if text {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// TemporalOptions are the client options of every role.
func (c *Config) TemporalOptions(log *slog.Logger) client.Options {
	return client.Options{
		HostPort:  c.TemporalAddress,
		Namespace: c.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(log.With("component", "temporal")),
	}
}

// DataDirFlag registers --data-dir.
func (c *Config) DataDirFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "dev data directory, used when DATABASE_URL is unset ("+EnvDataDir+")")
}

// DatabaseURLOrDev returns DATABASE_URL, or the dev SQLite database in the
// data dir (created if needed) when DATABASE_URL is unset.
func (c *Config) DatabaseURLOrDev() (string, error) {
	if c.DatabaseURL != "" {
		return c.DatabaseURL, nil
	}
	if c.DataDir == "" {
		return "", fmt.Errorf("%w: set DATABASE_URL or --data-dir", ErrUsage)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir %s is not usable: %w", c.DataDir, err)
	}
	return models.SQLiteURL(filepath.Join(c.DataDir, "streamhooks.db")), nil
}

// UseSecretKey makes the store encrypt webhook secrets with the key ring
// of STREAMHOOKS_SECRET_KEY: a comma-separated list of base64 32-byte keys,
// the current one (which seals) first, older ones after it (they only
// open), so that the master key can be rotated without downtime. Production
// roles require it; the dev mode (keyFile != "") falls back to one key it
// generates once in its data dir. The variable, when set, wins over the
// file.
func (c *Config) UseSecretKey(store *models.Store, keyFile string) error {
	raw := c.SecretKey
	if raw == "" && keyFile != "" {
		b, err := os.ReadFile(keyFile)
		switch {
		case err == nil:
			raw = string(b)
		case os.IsNotExist(err):
			raw = models.NewSecretKey()
			if err := os.WriteFile(keyFile, []byte(raw+"\n"), 0o600); err != nil {
				return fmt.Errorf("save the dev secret key: %w", err)
			}
		default:
			return fmt.Errorf("read the dev secret key: %w", err)
		}
	}
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%w: %s is required: a base64 32-byte key that encrypts webhook secrets at rest (e.g. openssl rand -base64 32), or during a key rotation a comma-separated list, current key first: <current>[,<older>...]", ErrUsage, EnvSecretKey)
	}
	keys, err := models.ParseSecretKeys(raw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (the format is <current>[,<older>...], each a base64 32-byte key)", ErrUsage, EnvSecretKey, err)
	}
	if err := store.SetSecretKeys(keys...); err != nil {
		return fmt.Errorf("%s: %w", EnvSecretKey, err)
	}
	return nil
}
