package devserver

import (
	"maps"
	"testing"
)

func TestPostgresSQL(t *testing.T) {
	c, err := PostgresSQL("postgres://bench:p%40ss@db.example:6543/streamhooks_bench_1_temporal?sslmode=disable&connect_timeout=5", 7)
	if err != nil {
		t.Fatal(err)
	}
	if c.PluginName != "postgres12" || c.ConnectAddr != "db.example:6543" || c.User != "bench" || c.Password != "p@ss" ||
		c.DatabaseName != "streamhooks_bench_1_temporal" || c.MaxConns != 7 || c.MaxIdleConns != 7 {
		t.Fatalf("PostgresSQL = %+v", c)
	}
	if want := map[string]string{"sslmode": "disable", "connect_timeout": "5"}; !maps.Equal(c.ConnectAttributes, want) {
		t.Fatalf("connect attributes %v, want %v", c.ConnectAttributes, want)
	}
	c, err = PostgresSQL("postgresql://postgres@/t", 1)
	if err != nil || c.ConnectAddr != "127.0.0.1:5432" || c.Password != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []string{"host=x dbname=y", "mysql://u@h/db", "postgres://u@h", "postgres://u@h/", "postgres://u@h/a/b", "postgres://%zz"} {
		if _, err := PostgresSQL(bad, 1); err == nil {
			t.Errorf("PostgresSQL(%q): no error", bad)
		}
	}
}
