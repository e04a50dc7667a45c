package activities

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the wait before each retry: at once, then after 5 s,
// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h — 8 attempts over about 27.6 h.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// ParseSchedule parses STREAMHOOKS_RETRY_SCHEDULE: comma-separated Go
// durations of the waits between attempts ("1s,2s,4s" = 4 attempts). An
// empty string is the default schedule.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultSchedule, nil
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("retry schedule %q: %w", s, err)
		}
		if d < 0 || d > 7*24*time.Hour {
			return nil, fmt.Errorf("retry schedule %q: each wait must be between 0 and 168h", s)
		}
		out = append(out, d)
	}
	if len(out) > 50 {
		return nil, fmt.Errorf("retry schedule %q: at most 50 retries", s)
	}
	return out, nil
}

// jitterFraction is the ±share of each scheduled wait that is randomised,
// so retries of many deliveries do not hit an endpoint in lock-step.
const jitterFraction = 0.2

// Jitter spreads a scheduled wait by ±jitterFraction. It is derived from
// the delivery id and attempt number, so workflows compute it
// deterministically on replay, and an activity that makes an attempt
// computes the same wait.
func Jitter(d time.Duration, deliveryID string, attempt int) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(deliveryID + "/" + strconv.Itoa(attempt)))
	f := float64(h.Sum64()%10001)/10000*2 - 1 // [-1, 1]
	return d + time.Duration(f*jitterFraction*float64(d))
}
