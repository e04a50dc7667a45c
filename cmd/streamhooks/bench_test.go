package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestBenchProductionShape keeps the production shape working: a tiny run
// against the test PostgreSQL server delivers every event through api and
// worker processes, and leaves neither a database nor a process behind.
func TestBenchProductionShape(t *testing.T) {
	admin := modelstest.PostgresAdminURL()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ping, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ping); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI but unreachable at %s: %v", admin, err)
		}
		t.Skipf("PostgreSQL unreachable at %s: %v", admin, err)
	}
	cmd := exec.Command(binary, "bench", "--shape", "production", "--events", "20", "--webhooks", "1,2", "--rate", "0", "--json")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+admin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var res struct {
		Shape   string `json:"shape"`
		CPU     string `json:"cpu_accounting"`
		Results []struct {
			Scenario      string  `json:"scenario"`
			Received      int64   `json:"received_at_receiver"`
			SucceededRows int64   `json:"succeeded_rows"`
			Events        int     `json:"events"`
			Hooks         int     `json:"webhooks_per_event"`
			RSS           float64 `json:"peak_rss_mb"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Results) != 2 || res.Shape != "production" || res.CPU != "machine" {
		t.Fatalf("bench output %s: %v", out, err)
	}
	for _, r := range res.Results {
		want := int64(r.Events * r.Hooks)
		if r.Received != want || r.SucceededRows != want || r.RSS <= 0 {
			t.Fatalf("%s: received %d, succeeded rows %d, want %d; rss %.0f MB", r.Scenario, r.Received, r.SucceededRows, want, r.RSS)
		}
	}

	// The run's databases and roles carry its pid in their names and env.
	mine := regexp.MustCompile(fmt.Sprintf(`streamhooks_bench_\d+_%d(_|\b)`, cmd.Process.Pid))
	rows, err := db.Query("SELECT datname FROM pg_database")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if mine.MatchString(name) {
			t.Errorf("database %s left behind", name)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		if env, err := os.ReadFile(p); err == nil && mine.Match(env) {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
			t.Errorf("process %s left behind: %q", filepath.Dir(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")))
		}
	}
}
