// Package modelstest gives tests real, migrated databases: a fresh
// PostgreSQL database per test (dropped at cleanup) and a fresh SQLite file.
//
// PostgreSQL is found at STREAMHOOKS_TEST_DATABASE_URL, by default
// postgres://postgres@127.0.0.1:5432/postgres. When it cannot be reached the
// test fails if CI is set and is skipped otherwise, so CI never passes
// without really running the PostgreSQL tests.
package modelstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/streamhooks/streamhooks/models"
)

// DefaultPostgresURL is used when STREAMHOOKS_TEST_DATABASE_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresAdminURL returns the URL of the server tests create databases on.
func PostgresAdminURL() string {
	if u := os.Getenv("STREAMHOOKS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// NewPostgresDatabase creates an empty database and returns its URL; it is
// dropped when the test ends.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("open PostgreSQL admin connection: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI but unreachable at %s: %v", admin, err)
		}
		t.Skipf("PostgreSQL unreachable at %s (set STREAMHOOKS_TEST_DATABASE_URL): %v", admin, err)
	}
	name := "shk_test_" + randomHex(6)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		_ = db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
		_ = db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a store on a fresh, migrated PostgreSQL database.
func Postgres(t testing.TB) *models.Store {
	t.Helper()
	return open(t, NewPostgresDatabase(t))
}

// SQLite returns a store on a fresh, migrated SQLite file.
func SQLite(t testing.TB) *models.Store {
	t.Helper()
	return open(t, models.SQLiteURL(filepath.Join(t.TempDir(), "streamhooks.db")))
}

func open(t testing.TB, dsn string) *models.Store {
	t.Helper()
	ctx := context.Background()
	s, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// Every test runs with secrets encrypted at rest, as production does.
	if err := s.SetSecretKey(TestSecretKey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// TestSecretKey is the webhook-secret key of test stores.
var TestSecretKey = []byte("streamhooks-test-key-32-bytes!!!")

// Each runs f once against PostgreSQL and once against SQLite, as subtests
// named after the dialect.
func Each(t *testing.T, f func(t *testing.T, s *models.Store)) {
	t.Helper()
	EachDSN(t, func(t *testing.T, s *models.Store, _ string) { f(t, s) })
}

// EachDSN is Each for tests that also open the database themselves (to
// read raw rows): f gets the store's DSN as models.Open takes it.
func EachDSN(t *testing.T, f func(t *testing.T, s *models.Store, dsn string)) {
	t.Helper()
	for _, dialect := range []string{models.DialectPostgres, models.DialectSQLite} {
		t.Run(dialect, func(t *testing.T) {
			dsn := models.SQLiteURL(filepath.Join(t.TempDir(), "streamhooks.db"))
			if dialect == models.DialectPostgres {
				dsn = NewPostgresDatabase(t)
			}
			f(t, open(t, dsn), dsn)
		})
	}
}

// Org creates an organization and a customer token for it, returning the
// token.
func Org(t testing.TB, s *models.Store, id string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateOrganization(ctx, id, id+" org"); err != nil {
		t.Fatalf("create organization %s: %v", id, err)
	}
	tok, err := s.CreateToken(ctx, models.ScopeCustomer, id)
	if err != nil {
		t.Fatalf("create token for %s: %v", id, err)
	}
	return tok
}

// ServiceToken creates a service token.
func ServiceToken(t testing.TB, s *models.Store) string {
	t.Helper()
	tok, err := s.CreateToken(context.Background(), models.ScopeService, "")
	if err != nil {
		t.Fatalf("create service token: %v", err)
	}
	return tok
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
