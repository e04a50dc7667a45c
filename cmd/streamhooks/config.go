package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamhooks/streamhooks/models"
)

// Environment variables, shared by every command.
const (
	envDatabaseURL = "DATABASE_URL"
	envDataDir     = "STREAMHOOKS_DATA_DIR"
	envAPIAddr     = "STREAMHOOKS_API_ADDR"
	envLogLevel    = "STREAMHOOKS_LOG_LEVEL"
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
}

// loadConfig reads the environment. Commands then register flags on top.
func loadConfig() config {
	return config{
		DatabaseURL: os.Getenv(envDatabaseURL),
		DataDir:     envOr(envDataDir, defaultDataDir),
		APIAddr:     envOr(envAPIAddr, ""),
		LogLevel:    envOr(envLogLevel, "info"),
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
