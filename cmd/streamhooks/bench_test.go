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

// benchOutput is what the tests read of "streamhooks bench --json".
type benchOutput struct {
	Shape   string     `json:"shape"`
	CPU     string     `json:"cpu_accounting"`
	Results []benchRow `json:"results"`
}

type benchRow struct {
	Scenario      string  `json:"scenario"`
	Received      int64   `json:"received_at_receiver"`
	SucceededRows int64   `json:"succeeded_rows"`
	Events        int     `json:"events"`
	Hooks         int     `json:"webhooks_per_event"`
	RSS           float64 `json:"peak_rss_mb"`
	VsTemporal    float64 `json:"ratio_to_temporal_ceiling"`
}

// runBench runs the bench with args and env (added to the test's) and
// returns its parsed output and the finished command.
func runBench(t *testing.T, env string, args ...string) (benchOutput, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var res benchOutput
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bench output %s: %v", out, err)
	}
	return res, cmd
}

// wantAllDelivered: every delivery of the row reached the receiver and
// is a succeeded row.
func (r benchRow) wantAllDelivered(t *testing.T) {
	t.Helper()
	want := int64(r.Events * r.Hooks)
	if r.Received != want || r.SucceededRows != want {
		t.Fatalf("%s: received %d, succeeded rows %d, want %d", r.Scenario, r.Received, r.SucceededRows, want)
	}
}

// TestBenchRuns keeps the benchmark harness working: a tiny run must
// deliver every event and report it, the temporal-ceiling yardstick
// first (its POSTs counted at the receiver; it writes no rows), and
// relate the other rows to it.
func TestBenchRuns(t *testing.T) {
	res, _ := runBench(t, "DATABASE_URL=", "--events", "20", "--webhooks", "1,2", "--rate", "0", "--json")
	if len(res.Results) != 3 || res.Results[0].Scenario != "temporal-ceiling" {
		t.Fatalf("bench output %+v: want temporal-ceiling and two saturation rows", res)
	}
	if tc := res.Results[0]; tc.Received != int64(tc.Events) {
		t.Fatalf("temporal-ceiling: received %d, want %d", tc.Received, tc.Events)
	}
	for _, r := range res.Results[1:] {
		if r.VsTemporal <= 0 {
			t.Fatalf("%s: no ratio to temporal-ceiling", r.Scenario)
		}
		r.wantAllDelivered(t)
	}
}

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
	res, cmd := runBench(t, "DATABASE_URL="+admin, "--shape", "production", "--events", "20", "--webhooks", "1,2", "--rate", "0", "--json")
	if len(res.Results) != 2 || res.Shape != "production" || res.CPU != "machine" {
		t.Fatalf("bench output %+v: want the production shape, machine CPU, two rows", res)
	}
	for _, r := range res.Results {
		r.wantAllDelivered(t)
		if r.RSS <= 0 {
			t.Fatalf("%s: rss %.0f MB", r.Scenario, r.RSS)
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
