package activities_test

import (
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
)

func TestParseSchedule(t *testing.T) {
	s, err := activities.ParseSchedule("1s, 2s,4s")
	if err != nil || len(s) != 3 || s[2] != 4*time.Second {
		t.Fatalf("ParseSchedule: got %v, %v", s, err)
	}
	if s, _ := activities.ParseSchedule(""); len(s) != 7 {
		t.Fatalf("default schedule: %d waits, want 7 (8 attempts)", len(s))
	}
	for _, bad := range []string{"1x", "-1s", "1s,,2s", "200h"} {
		if _, err := activities.ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}
