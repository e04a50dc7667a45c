package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// onlyPostgres lists the schema facts (as schemaFacts spells them) that
// PostgreSQL has and SQLite lacks on purpose, each with its reason. Every
// entry must still be a difference: one that no longer is fails the test, so
// the list never outlives what it excuses.
var onlyPostgres = map[string]string{
	// SQLite lets a PRIMARY KEY column that is not an INTEGER PRIMARY KEY
	// hold NULL (a compatibility quirk it keeps on ordinary rowid tables),
	// so these text ids are nullable there and NOT NULL on PostgreSQL. The
	// store always sets them; adding NOT NULL on SQLite means rebuilding
	// each table and those that reference it, which is not worth it for
	// the dev database.
	"not null asset_events.id":  "SQLite: text PRIMARY KEY allows NULL",
	"not null deliveries.id":    "SQLite: text PRIMARY KEY allows NULL",
	"not null organizations.id": "SQLite: text PRIMARY KEY allows NULL",
	"not null webhooks.id":      "SQLite: text PRIMARY KEY allows NULL",
}

// onlySQLite is onlyPostgres the other way round.
var onlySQLite = map[string]string{}

// TestSchemasMatch migrates a PostgreSQL and a SQLite database and checks
// that both migration directories build the same schema: the same tables,
// columns (normalised type and nullability), primary keys and indexes.
func TestSchemasMatch(t *testing.T) {
	pg := schemaFacts(t, models.DialectPostgres, migratedDB(t, models.DialectPostgres))
	lite := schemaFacts(t, models.DialectSQLite, migratedDB(t, models.DialectSQLite))
	if len(pg) == 0 || len(lite) == 0 {
		t.Fatalf("read %d PostgreSQL and %d SQLite schema facts, want both non-empty", len(pg), len(lite))
	}
	checkOnlyIn(t, "PostgreSQL", pg, lite, onlyPostgres)
	checkOnlyIn(t, "SQLite", lite, pg, onlySQLite)
}

// checkOnlyIn reports every fact of have that other lacks and allowed does
// not excuse, and every allowed entry that is no longer such a fact.
func checkOnlyIn(t *testing.T, dialect string, have, other map[string]bool, allowed map[string]string) {
	t.Helper()
	for _, f := range sortedKeys(have) {
		if !other[f] && allowed[f] == "" {
			t.Errorf("%s only: %s (got it on %s alone, want it on both dialects)", dialect, f, dialect)
		}
	}
	for f := range allowed {
		if !have[f] || other[f] {
			t.Errorf("allow-list entry %q for %s: got on %s %v, on the other %v; want only on %s (remove the entry)", f, dialect, dialect, have[f], other[f], dialect)
		}
	}
}

func TestNormaliseType(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"postgres text", "text", "text"},
		{"postgres varchar", "character varying", "text"},
		{"sqlite varchar with length", "VARCHAR(255)", "text"},
		{"postgres integer", "integer", "integer"},
		{"postgres bigint", "bigint", "integer"},
		{"sqlite INTEGER", "INTEGER", "integer"},
		{"sqlite int", "int", "integer"},
		{"boolean", "boolean", "boolean"},
		{"postgres timestamptz", "timestamp with time zone", "timestamp"},
		{"postgres timestamp", "timestamp without time zone", "timestamp"},
		{"sqlite datetime", "datetime", "timestamp"},
		{"postgres bytea", "bytea", "bytes"},
		{"sqlite blob", "BLOB", "bytes"},
		{"postgres double", "double precision", "real"},
		{"unknown kept visible", "jsonb", "unknown(jsonb)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normaliseType(tt.in); got != tt.want {
				t.Fatalf("normaliseType(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// typeVocabulary maps the type names of both dialects (lower case, without
// a length) to the few types the comparison speaks.
var typeVocabulary = map[string]string{
	"text": "text", "character varying": "text", "varchar": "text", "character": "text", "char": "text", "clob": "text",
	"integer": "integer", "int": "integer", "bigint": "integer", "smallint": "integer", "int2": "integer", "int4": "integer", "int8": "integer",
	"boolean": "boolean", "bool": "boolean",
	"timestamp with time zone": "timestamp", "timestamp without time zone": "timestamp", "timestamptz": "timestamp", "timestamp": "timestamp", "datetime": "timestamp",
	"bytea": "bytes", "blob": "bytes",
	"double precision": "real", "real": "real", "double": "real", "float": "real",
	"numeric": "numeric", "decimal": "numeric",
}

var typeLength = regexp.MustCompile(`\s*\(.*\)$`)

// normaliseType maps a PostgreSQL data_type or a SQLite declared type to
// the comparison's vocabulary; an unknown type stays visible as
// unknown(type) so it can only match the same unknown type.
func normaliseType(raw string) string {
	name := typeLength.ReplaceAllString(strings.ToLower(strings.TrimSpace(raw)), "")
	if v, ok := typeVocabulary[name]; ok {
		return v
	}
	return "unknown(" + name + ")"
}

// migratedDB migrates a fresh database of dialect through the store and
// returns a plain connection to it for catalog queries.
func migratedDB(t *testing.T, dialect string) *sql.DB {
	t.Helper()
	ctx := context.Background()
	var dsn, driver, raw string
	switch dialect {
	case models.DialectPostgres:
		dsn = modelstest.NewPostgresDatabase(t)
		driver, raw = "pgx", dsn
	case models.DialectSQLite:
		path := filepath.Join(t.TempDir(), "schema.db")
		dsn = models.SQLiteURL(path)
		driver, raw = "sqlite", "file:"+filepath.ToSlash(path)
	default:
		t.Fatalf("unknown dialect %q", dialect)
	}
	s, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s store: %v", dialect, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	db, err := sql.Open(driver, raw)
	if err != nil {
		t.Fatalf("open %s catalog connection: %v", dialect, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// schemaFacts describes the schema as a set of one-line facts that mean
// the same on both dialects:
//
//	table T
//	column T.c <type>
//	not null T.c
//	primary key T (a, b)
//	index T name (a, b desc) [unique] [partial]
//	unique constraint T (a, b)
//
// Unique constraints have no name of their own (each dialect invents one),
// and the index behind a primary key is the primary key fact.
func schemaFacts(t *testing.T, dialect string, db *sql.DB) map[string]bool {
	t.Helper()
	var tables []tableSchema
	var err error
	if dialect == models.DialectPostgres {
		tables, err = postgresSchema(db)
	} else {
		tables, err = sqliteSchema(db)
	}
	if err != nil {
		t.Fatalf("read %s schema: %v", dialect, err)
	}
	facts := map[string]bool{}
	for _, tb := range tables {
		facts["table "+tb.name] = true
		for _, c := range tb.columns {
			facts[fmt.Sprintf("column %s.%s %s", tb.name, c.name, normaliseType(c.rawType))] = true
			if c.notNull {
				facts[fmt.Sprintf("not null %s.%s", tb.name, c.name)] = true
			}
		}
		if len(tb.primaryKey) > 0 {
			facts[fmt.Sprintf("primary key %s (%s)", tb.name, strings.Join(tb.primaryKey, ", "))] = true
		}
		for _, ix := range tb.indexes {
			cols := strings.Join(ix.columns, ", ")
			if ix.constraint {
				facts[fmt.Sprintf("unique constraint %s (%s)", tb.name, cols)] = true
				continue
			}
			f := fmt.Sprintf("index %s %s (%s)", tb.name, ix.name, cols)
			if ix.unique {
				f += " unique"
			}
			if ix.partial {
				f += " partial"
			}
			facts[f] = true
		}
	}
	return facts
}

type tableSchema struct {
	name       string
	columns    []columnSchema
	primaryKey []string // in key order
	indexes    []indexSchema
}

type columnSchema struct {
	name    string
	rawType string
	notNull bool
}

type indexSchema struct {
	name       string
	columns    []string // in key order; a descending one as "c desc"
	unique     bool
	partial    bool
	constraint bool // made by a UNIQUE constraint, not CREATE INDEX
}

func postgresSchema(db *sql.DB) ([]tableSchema, error) {
	names, err := queryStrings(db, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	var out []tableSchema
	for _, name := range names {
		tb := tableSchema{name: name}
		rows, err := db.Query(`SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c columnSchema
			if err := rows.Scan(&c.name, &c.rawType, &c.notNull); err != nil {
				_ = rows.Close()
				return nil, err
			}
			tb.columns = append(tb.columns, c)
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
		rows, err = db.Query(`SELECT i.relname, ix.indisprimary, ix.indisunique, ix.indpred IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_constraint c
					WHERE c.conindid = ix.indexrelid AND c.conrelid = ix.indrelid AND c.contype = 'u'),
				(SELECT string_agg(a.attname || CASE WHEN k.opt & 1 = 1 THEN ' desc' ELSE '' END, ',' ORDER BY k.ord)
					FROM unnest(ix.indkey::int2[], ix.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
					JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum)
			FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
			WHERE ix.indrelid = $1::regclass ORDER BY i.relname`, name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var ix indexSchema
			var primary bool
			var cols string
			if err := rows.Scan(&ix.name, &primary, &ix.unique, &ix.partial, &ix.constraint, &cols); err != nil {
				_ = rows.Close()
				return nil, err
			}
			ix.columns = strings.Split(cols, ",")
			if primary {
				tb.primaryKey = ix.columns
				continue
			}
			tb.indexes = append(tb.indexes, ix)
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
		out = append(out, tb)
	}
	return out, nil
}

func sqliteSchema(db *sql.DB) ([]tableSchema, error) {
	names, err := queryStrings(db, `SELECT name FROM sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var out []tableSchema
	for _, name := range names {
		tb := tableSchema{name: name}
		rows, err := db.Query(`SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid`, name)
		if err != nil {
			return nil, err
		}
		var pk []columnSchema
		var pkPos []int
		for rows.Next() {
			var c columnSchema
			var pos int
			if err := rows.Scan(&c.name, &c.rawType, &c.notNull, &pos); err != nil {
				_ = rows.Close()
				return nil, err
			}
			tb.columns = append(tb.columns, c)
			if pos > 0 {
				pk, pkPos = append(pk, c), append(pkPos, pos)
			}
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
		tb.primaryKey = make([]string, len(pk))
		for i, c := range pk {
			tb.primaryKey[pkPos[i]-1] = c.name
		}
		// A single INTEGER PRIMARY KEY column is the rowid: it can never
		// hold NULL (inserting NULL assigns the next id), though
		// pragma_table_info reports it as nullable.
		if len(pk) == 1 && strings.EqualFold(pk[0].rawType, "integer") {
			for i := range tb.columns {
				if tb.columns[i].name == pk[0].name {
					tb.columns[i].notNull = true
				}
			}
		}
		rows, err = db.Query(`SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name`, name)
		if err != nil {
			return nil, err
		}
		var indexes []indexSchema
		for rows.Next() {
			var ix indexSchema
			var origin string
			if err := rows.Scan(&ix.name, &ix.unique, &origin, &ix.partial); err != nil {
				_ = rows.Close()
				return nil, err
			}
			// origin: c for CREATE INDEX, u for a UNIQUE constraint, pk
			// for the primary key (a fact of its own).
			if origin == "pk" {
				continue
			}
			ix.constraint = origin == "u"
			indexes = append(indexes, ix)
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
		for _, ix := range indexes {
			cols, err := queryStrings(db, `SELECT name || CASE WHEN "desc" THEN ' desc' ELSE '' END
				FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno`, ix.name)
			if err != nil {
				return nil, err
			}
			ix.columns = cols
			tb.indexes = append(tb.indexes, ix)
		}
		out = append(out, tb)
	}
	return out, nil
}

func queryStrings(db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			_ = rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	return out, closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return err
	}
	return rows.Close()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
