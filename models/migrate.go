package models

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

//go:embed migrations
var migrationFiles embed.FS

// Migration is one versioned schema change, embedded in the binary.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations of a dialect in version order.
func Migrations(dialect string) ([]Migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations of %s: %w", dialect, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a version number and _", name)
		}
		body, err := fs.ReadFile(migrationFiles, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction. On PostgreSQL an advisory
// lock serialises concurrent migrators (several replicas starting at once).
// It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	migs, err := Migrations(s.Dialect())
	if err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	if err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at ` + s.timeType() + ` NOT NULL)`).Error; err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", translate(err, "schema"))
	}
	var applied []int
	for _, m := range migs {
		done := false
		err := db.Transaction(func(tx *gorm.DB) error {
			if s.Dialect() == DialectPostgres {
				// Key is arbitrary but fixed: "streamhooks" as digits.
				if err := tx.Exec(`SELECT pg_advisory_xact_lock(787732)`).Error; err != nil {
					return err
				}
			}
			var n int64
			if err := tx.Raw(`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.Exec(m.SQL).Error; err != nil {
				return err
			}
			done = true
			return tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, now()).Error
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s: %w", m.Name, translate(err, "schema"))
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

func (s *Store) timeType() string {
	if s.Dialect() == DialectPostgres {
		return "timestamptz"
	}
	return "datetime"
}

// PendingMigrations lists the embedded migrations not yet applied.
func (s *Store) PendingMigrations(ctx context.Context) ([]Migration, error) {
	migs, err := Migrations(s.Dialect())
	if err != nil {
		return nil, err
	}
	var versions []int
	err = s.db.WithContext(ctx).Raw(`SELECT version FROM schema_migrations`).Scan(&versions).Error
	if err != nil {
		// No schema_migrations table yet: everything is pending.
		if s.Ping(ctx) == nil {
			return migs, nil
		}
		return nil, fmt.Errorf("read schema version: %w", translate(err, "schema"))
	}
	done := map[int]bool{}
	for _, v := range versions {
		done[v] = true
	}
	var out []Migration
	for _, m := range migs {
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}
