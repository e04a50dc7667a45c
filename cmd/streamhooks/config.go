package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/workflows"

	"github.com/streamhooks/streamhooks/models"
)

// Environment variables, shared by every command.
const (
	envDatabaseURL = "DATABASE_URL"
	envDataDir     = "STREAMHOOKS_DATA_DIR"
	envAPIAddr     = "STREAMHOOKS_API_ADDR"
	envLogLevel    = "STREAMHOOKS_LOG_LEVEL"

	envTemporalAddress   = "TEMPORAL_ADDRESS"
	envTemporalNamespace = "TEMPORAL_NAMESPACE"
	envRetrySchedule     = "STREAMHOOKS_RETRY_SCHEDULE"
	envAttemptTimeout    = "STREAMHOOKS_ATTEMPT_TIMEOUT"
	envAllowedTargets    = "STREAMHOOKS_ALLOWED_TARGET_CIDRS"
	envDisableAfter      = "STREAMHOOKS_DISABLE_AFTER"
	envMetricsAddr       = "STREAMHOOKS_METRICS_ADDR"
	envTaskQueue         = "STREAMHOOKS_TASK_QUEUE"
	envSecretKey         = "STREAMHOOKS_SECRET_KEY"
	envReconcileInterval = "STREAMHOOKS_RECONCILE_INTERVAL"
	envReconcileGrace    = "STREAMHOOKS_RECONCILE_GRACE"
)

// defaultDataDir is where the dev mode keeps its databases.
const defaultDataDir = ".streamhooks"

// config is every setting of every command, loaded once from the
// environment and then from flags (flags win), and validated before use.
type config struct {
	DatabaseURL string
	DataDir     string
	APIAddr     string
	LogLevel    string

	TemporalAddress   string
	TemporalNamespace string
	RetrySchedule     string // parsed by delivery()
	AttemptTimeout    string
	AllowedTargets    string
	DisableAfter      string
	MetricsAddr       string
	TaskQueue         string
	SecretKey         string
	ReconcileInterval string // parsed by reconcile()
	ReconcileGrace    string
}

// reconcileConfig is the validated reconciler settings of a worker.
type reconcileConfig struct {
	Interval time.Duration
	Grace    time.Duration
}

// reconcile parses the reconciler settings (defaults when unset).
func (c *config) reconcile() (reconcileConfig, error) {
	r := reconcileConfig{Interval: service.DefaultReconcileInterval, Grace: service.DefaultGrace}
	for _, v := range []struct {
		name, raw string
		dst       *time.Duration
	}{{envReconcileInterval, c.ReconcileInterval, &r.Interval}, {envReconcileGrace, c.ReconcileGrace, &r.Grace}} {
		if v.raw == "" {
			continue
		}
		d, err := time.ParseDuration(v.raw)
		if err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
			return r, fmt.Errorf("%w: %s=%q: want a duration between 100ms and 24h", errUsage, v.name, v.raw)
		}
		*v.dst = d
	}
	return r, nil
}

// deliveryConfig is the validated delivery settings of a worker.
type deliveryConfig struct {
	Schedule       []time.Duration
	AttemptTimeout time.Duration
	Allowed        []netip.Prefix
	DisableAfter   time.Duration
}

// delivery parses and validates the delivery settings, failing with a
// message that names the variable.
func (c *config) delivery() (deliveryConfig, error) {
	var d deliveryConfig
	var err error
	if d.Schedule, err = activities.ParseSchedule(c.RetrySchedule); err != nil {
		return d, fmt.Errorf("%w: %s: %v", errUsage, envRetrySchedule, err)
	}
	d.AttemptTimeout = activities.DefaultAttemptTimeout
	if c.AttemptTimeout != "" {
		if d.AttemptTimeout, err = time.ParseDuration(c.AttemptTimeout); err != nil || d.AttemptTimeout <= 0 || d.AttemptTimeout > 5*time.Minute {
			return d, fmt.Errorf("%w: %s=%q: want a duration between 1ms and 5m", errUsage, envAttemptTimeout, c.AttemptTimeout)
		}
	}
	if d.Allowed, err = egress.ParseCIDRs(c.AllowedTargets); err != nil {
		return d, fmt.Errorf("%w: %s: %v", errUsage, envAllowedTargets, err)
	}
	d.DisableAfter = activities.DefaultDisableAfter
	if c.DisableAfter != "" {
		if d.DisableAfter, err = time.ParseDuration(c.DisableAfter); err != nil || d.DisableAfter < 0 {
			return d, fmt.Errorf("%w: %s=%q: want a duration such as 120h (0 never disables)", errUsage, envDisableAfter, c.DisableAfter)
		}
	}
	return d, nil
}

// loadConfig reads the environment. Commands then register flags on top.
func loadConfig() config {
	return config{
		DatabaseURL: os.Getenv(envDatabaseURL),
		DataDir:     envOr(envDataDir, defaultDataDir),
		APIAddr:     envOr(envAPIAddr, ""),
		LogLevel:    envOr(envLogLevel, "info"),

		TemporalAddress:   envOr(envTemporalAddress, "127.0.0.1:7233"),
		TemporalNamespace: envOr(envTemporalNamespace, "default"),
		RetrySchedule:     os.Getenv(envRetrySchedule),
		AttemptTimeout:    envOr(envAttemptTimeout, ""),
		AllowedTargets:    os.Getenv(envAllowedTargets),
		DisableAfter:      os.Getenv(envDisableAfter),
		MetricsAddr:       os.Getenv(envMetricsAddr),
		TaskQueue:         envOr(envTaskQueue, workflows.TaskQueue),
		SecretKey:         os.Getenv(envSecretKey),
		ReconcileInterval: os.Getenv(envReconcileInterval),
		ReconcileGrace:    os.Getenv(envReconcileGrace),
	}
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// dataDirFlag registers --data-dir.
func (c *config) dataDirFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "dev data directory, used when DATABASE_URL is unset ("+envDataDir+")")
}

// databaseURL returns DATABASE_URL, or the dev SQLite database in the data
// dir (created if needed) when DATABASE_URL is unset.
func (c *config) databaseURL() (string, error) {
	if c.DatabaseURL != "" {
		return c.DatabaseURL, nil
	}
	if c.DataDir == "" {
		return "", fmt.Errorf("%w: set DATABASE_URL or --data-dir", errUsage)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir %s is not usable: %w", c.DataDir, err)
	}
	return models.SQLiteURL(filepath.Join(c.DataDir, "streamhooks.db")), nil
}

// useSecretKey makes the store encrypt webhook secrets with
// STREAMHOOKS_SECRET_KEY. Production roles require it; the dev mode
// (keyFile != "") falls back to a key it generates once in its data dir.
func (c *config) useSecretKey(store *models.Store, keyFile string) error {
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
	if raw == "" {
		return fmt.Errorf("%w: %s is required: a base64 32-byte key that encrypts webhook secrets at rest (e.g. openssl rand -base64 32)", errUsage, envSecretKey)
	}
	key, err := models.ParseSecretKey(raw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, envSecretKey, err)
	}
	return store.SetSecretKey(key)
}
