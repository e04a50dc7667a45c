package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestBusyTicks(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  379836 7 129142 26589 1894 11 3273 5 100 0\n" +
		"cpu0 190022 0 63827 14740 776 0 1017 0 0 0\n" +
		"intr 123 4 5\n"
	got, err := busyTicks([]byte(stat))
	if want := uint64(379836 + 7 + 129142 + 11 + 3273 + 5); err != nil || got != want {
		t.Fatalf("busyTicks = %d, %v; want %d (idle, iowait and guest not counted)", got, err, want)
	}
	// A kernel without the steal column still parses.
	if got, err := busyTicks([]byte("cpu  10 1 2 50 3 4 5\n")); err != nil || got != 22 {
		t.Fatalf("busyTicks without steal = %d, %v; want 22", got, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu  1 2 3\n", "cpu  1 x 3 4 5 6 7 8\n"} {
		if _, err := busyTicks([]byte(bad)); err == nil {
			t.Errorf("busyTicks(%q): no error", bad)
		}
	}
}

func TestRoleEnv(t *testing.T) {
	base := []string{"PATH=/bin", "DATABASE_URL=postgres://other", "STREAMHOOKS_RETRY_SCHEDULE=1s", "TEMPORAL_ADDRESS=x:1",
		"GOMEMLIMIT=300MiB", "DATABASE_URL_X=kept"}
	got := roleEnv(base, map[string]string{"TEMPORAL_ADDRESS": "127.0.0.1:7233", "DATABASE_URL": "postgres://bench"})
	want := []string{"PATH=/bin", "GOMEMLIMIT=300MiB", "DATABASE_URL_X=kept", "DATABASE_URL=postgres://bench", "TEMPORAL_ADDRESS=127.0.0.1:7233"}
	if !slices.Equal(got, want) {
		t.Fatalf("roleEnv = %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := tl.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tl.String(); got != "defghijk" {
		t.Fatalf("tail = %q, want the last 8 bytes", got)
	}
	tl.Write([]byte(strings.Repeat("z", 20)))
	if got := tl.String(); got != strings.Repeat("z", 8) {
		t.Fatalf("tail after a long write = %q", got)
	}
}
