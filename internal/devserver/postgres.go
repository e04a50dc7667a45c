package devserver

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"time"

	tconfig "go.temporal.io/server/common/config"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	tsql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/resolver"
	dbschemas "go.temporal.io/server/schema"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	sqliteschema "go.temporal.io/server/schema/sqlite"

	"github.com/streamhooks/streamhooks/workflows"
)

// Postgres locates the two PostgreSQL databases of a Temporal server, as
// postgres:// URLs of databases that exist: Persistence (histories, tasks,
// namespaces, shards) and Visibility (the workflow list and its search
// attributes). A database without Temporal's schema gets it on start.
type Postgres struct {
	Persistence string
	Visibility  string
}

// Store names of the PostgreSQL server configuration.
const (
	pgDefaultStore    = "postgres-default"
	pgVisibilityStore = "postgres-visibility"
)

// StartPostgres is Start with Temporal's persistence and visibility in
// PostgreSQL (sql plugin postgres12) instead of the SQLite file: the shape
// of a production Temporal cluster, in this process. It sets up the schema
// of an empty database, creates the namespace with the starter's search
// attributes when missing, and starts the server and UI; cfg.DataDir only
// holds the server's log (temporal.log). The cluster settings and dynamic
// config are the SQLite server's.
func StartPostgres(cfg Config, pg Postgres) (*Server, error) {
	addrs, err := cfg.addrs()
	if err != nil {
		return nil, err
	}
	// PostgreSQL, unlike SQLite, takes concurrent writers. Each of the four
	// services opens its own pools: at most 4 × (10 + 5) connections, which
	// leaves most of a default max_connections (100) to the app.
	persist, err := PostgresSQL(pg.Persistence, 10)
	if err != nil {
		return nil, fmt.Errorf("the Temporal persistence database: %w", err)
	}
	vis, err := PostgresSQL(pg.Visibility, 5)
	if err != nil {
		return nil, fmt.Errorf("the Temporal visibility database: %w", err)
	}
	if err := setupPostgresSchema(&persist, "postgresql/v12/temporal/schema.sql", pgschema.Version); err != nil {
		return nil, fmt.Errorf("set up the Temporal schema in %s: %w", persist.DatabaseName, err)
	}
	if err := setupPostgresSchema(&vis, "postgresql/v12/visibility/schema.sql", pgschema.VisibilityVersion); err != nil {
		return nil, fmt.Errorf("set up the Temporal visibility schema in %s: %w", vis.DatabaseName, err)
	}
	// The namespace row is written before start, as for SQLite: the sqlite
	// schema package's helpers go through Temporal's generic SQL layer
	// (sql.NewSQLDB with the config's plugin), so they serve PostgreSQL
	// too. Registering through the API after start would leave every
	// service's namespace cache without the search attribute aliases for up
	// to its refresh interval (10 s), and starts with them would fail.
	ns, err := sqliteschema.NewNamespaceConfig(devClusterName, Namespace, false, workflows.SearchAttributeTypes())
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(&persist, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s in %s: %w", Namespace, persist.DatabaseName, err)
	}

	return start(cfg, addrs, tconfig.Persistence{
		DefaultStore: pgDefaultStore, VisibilityStore: pgVisibilityStore, NumHistoryShards: 1,
		DataStores: map[string]tconfig.DataStore{pgDefaultStore: {SQL: &persist}, pgVisibilityStore: {SQL: &vis}},
	})
}

// PostgresSQL is the Temporal SQL store configuration (plugin postgres12)
// of a postgres:// or postgresql:// URL: host and port (default 5432),
// user, password, database and the query parameters (sslmode, ...) as
// connect attributes. maxConns sizes the pool.
func PostgresSQL(dsn string, maxConns int) (tconfig.SQL, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return tconfig.SQL{}, fmt.Errorf("parse database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return tconfig.SQL{}, fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return tconfig.SQL{}, fmt.Errorf("database URL %s names no database", u.Redacted())
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		attrs[k] = v[len(v)-1]
	}
	password, _ := u.User.Password()
	return tconfig.SQL{
		PluginName:        pgplugin.PluginName,
		ConnectAddr:       net.JoinHostPort(host, port),
		User:              u.User.Username(),
		Password:          password,
		DatabaseName:      db,
		ConnectAttributes: attrs,
		MaxConns:          maxConns,
		MaxIdleConns:      maxConns,
		MaxConnLifetime:   time.Hour,
	}, nil
}

// setupPostgresSchema applies the server module's embedded full schema
// (schemaFile, under go.temporal.io/server/schema) to a database that has
// no schema_version row yet and records version, which is what
// "temporal-sql-tool setup-schema --schema-name ... --version" does. The
// full schema.sql is the versioned updates folded together (Temporal's own
// PostgreSQL persistence tests set up from it). A database that has a
// version is left alone: the server checks it is compatible on start.
func setupPostgresSchema(cfg *tconfig.SQL, schemaFile, version string) error {
	db, err := tsql.NewSQLAdminDB(sqlplugin.DbKindUnknown, cfg, resolver.NewNoopResolver(), tlog.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if v, err := db.ReadSchemaVersion(cfg.DatabaseName); err == nil && v != "" {
		return nil
	}
	raw, err := fs.ReadFile(dbschemas.Assets(), schemaFile)
	if err != nil {
		return fmt.Errorf("embedded schema %s: %w", schemaFile, err)
	}
	stmts, err := persistence.LoadAndSplitQueryFromReaders([]io.Reader{bytes.NewReader(raw)})
	if err != nil {
		return fmt.Errorf("parse %s: %w", schemaFile, err)
	}
	if err := db.CreateSchemaVersionTables(); err != nil {
		return fmt.Errorf("create schema version tables: %w", err)
	}
	for _, stmt := range stmts {
		if err := db.Exec(stmt); err != nil {
			return fmt.Errorf("%s: %w", firstLine(stmt), err)
		}
	}
	if err := db.UpdateSchemaVersion(cfg.DatabaseName, version, version); err != nil {
		return fmt.Errorf("record schema version %s: %w", version, err)
	}
	if err := db.WriteSchemaUpdateLog("0", version, "", "initial version"); err != nil {
		return fmt.Errorf("record schema update: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
