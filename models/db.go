// Package models holds the GORM models, the store that reads and writes them,
// and the versioned SQL migrations of the streamhooks database. It imports no
// other package of the project.
package models

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// Dialects the store supports.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// Store reads and writes every table of streamhooks. It is safe for
// concurrent use.
type Store struct {
	db   *gorm.DB
	keys *keyRing // encrypts webhook secrets at rest when set
}

// Open connects to the database named by dsn: a postgres:// or postgresql://
// URL (or a libpq key=value string) for PostgreSQL, or sqlite:<path> / a
// path ending in .db for the embedded SQLite database of the dev mode.
func Open(ctx context.Context, dsn string) (*Store, error) {
	dialect, conn, err := dialectorFor(dsn)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(conn, &gorm.Config{
		TranslateError:         true,
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// PostgreSQL keeps microseconds: round here so a created row and the
		// same row read back are identical.
		NowFunc: func() time.Time { return now() },
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == DialectSQLite {
		// One writer at a time is SQLite's rule; WAL lets readers proceed
		// beside it and busy_timeout queues writers instead of failing them.
		sqlDB.SetMaxOpenConns(8)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return s, nil
}

func dialectorFor(dsn string) (string, gorm.Dialector, error) {
	switch {
	case dsn == "":
		return "", nil, fmt.Errorf("no database configured: set DATABASE_URL (postgres://...) or use the dev data dir")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), strings.Contains(dsn, "host="):
		return DialectPostgres, postgres.New(postgres.Config{DSN: dsn}), nil
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasSuffix(dsn, ".db"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		return DialectSQLite, sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: sqliteDSN(path)}), nil
	}
	return "", nil, fmt.Errorf("unrecognised database URL: want postgres://..., postgresql://... or sqlite:<path>")
}

// sqliteDSN adds the pragmas every connection needs: WAL for concurrent
// readers, a busy timeout so writers queue, foreign keys on, and immediate
// transactions so two writers never deadlock upgrading read locks.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	// Store times as "2006-01-02 15:04:05.999999999-07:00", not Go's
	// String() form (which carries the monotonic clock reading).
	q.Set("_time_format", "sqlite")
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

// SQLiteURL returns the DSN of the SQLite database at path.
func SQLiteURL(path string) string { return "sqlite:" + path }

// Dialect reports which database the store talks to.
func (s *Store) Dialect() string { return s.db.Name() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return translate(sqlDB.PingContext(ctx), "database")
}

// Close releases the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// now is the store's clock: UTC, rounded to the microsecond PostgreSQL keeps,
// so a row written and the same row read back are identical.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// maxTxTries bounds how often transact runs a transaction that PostgreSQL
// aborted to break a deadlock or a serialization conflict.
const maxTxTries = 5

// transact runs fn in a transaction, and runs it again when PostgreSQL
// aborted it as a deadlock victim or for a serialization failure (class
// 40): such an abort means "try again", never "this request is wrong".
// Concurrent writers take row locks in different orders (an attempt locks
// its delivery then its webhook; deleting a webhook locks the webhook then
// its deliveries), so this is the normal way out, not an edge case.
func (s *Store) transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for try := range maxTxTries {
		if err = s.db.WithContext(ctx).Transaction(fn); err == nil || !isRetryableTx(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(try+1) * time.Duration(5+rand.IntN(20)) * time.Millisecond):
		}
	}
	return err
}
