package main_test

// Process-level tests of issue 11: nothing accepted is lost when the
// Temporal server is killed (and comes back with or without its data), and
// a fan-out of thousands of webhooks survives a worker kill -9 without
// starving a small event. docs/reliability.md carries the figures.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/models/modelstest"
)

// devTemporal is a Temporal server in an OS process of its own: a
// `streamhooks dev`, whose embedded server the production roles share on a
// task queue of their own, so a test can kill -9 it and start it again.
type devTemporal struct {
	t     *testing.T
	dir   string
	addrs devAddrs
	p     *process
}

func newDevTemporal(t *testing.T) *devTemporal {
	t.Helper()
	d := &devTemporal{t: t, dir: t.TempDir(), addrs: devAddrs{api: freeAddr(t), temporal: freeAddr(t), ui: freeAddr(t)}}
	d.start()
	return d
}

func (d *devTemporal) start() {
	d.t.Helper()
	d.p = startDev(d.t, d.dir, d.addrs, "DATABASE_URL=", "STREAMHOOKS_TASK_QUEUE=")
	d.p.waitReady(d.t)
}

// kill9 kills the server; lose, when true, also throws its data away, as a
// Temporal cluster restored from nothing would be.
func (d *devTemporal) kill9(lose bool) {
	d.t.Helper()
	d.p.kill9(d.t)
	if lose {
		d.dir = d.t.TempDir()
	}
}

func (d *devTemporal) target() temporalTarget {
	d.t.Helper()
	c, err := client.Dial(client.Options{HostPort: d.addrs.temporal, Namespace: "default", Logger: quietLogger{}})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(c.Close)
	return temporalTarget{frontend: d.addrs.temporal, namespace: "default", client: c}
}

// quietLogger keeps the SDK's reconnect warnings out of the test output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// TestTemporalKill9 kills the Temporal server with kill -9 in the middle
// of a burst and starts it again: on its data (a crash), and on an empty
// data dir (its state lost, which only the reconciler can repair). The API
// keeps answering 202 at once while Temporal is away, and every accepted
// event is delivered.
func TestTemporalKill9(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose bool
	}{{"restart on its data", false}, {"restart with its data lost", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dt := newDevTemporal(t)
			k := newSink(t, ok(20*time.Millisecond), failFirst(1, 503, 0))
			s := newProdStackOn(t, modelstest.NewPostgresDatabase(t), dt.target(), "org1")
			s.hooks("org1", k, 0, 1)
			var events []event
			for i := range 150 {
				events = append(events, event{"org1", fmt.Sprintf("tk-%03d", i)})
			}
			want := pairsOf(events, map[string][]int{"org1": {0, 1}})
			worker := s.startWorker()
			posted := make(chan [2]int, 1)
			go func() {
				u, r := s.post(events[:100], 4)
				posted <- [2]int{u, r}
			}()
			k.waitCount(len(want)/5, time.Minute)
			dt.kill9(tc.lose)
			kill := time.Now()
			t.Logf("Temporal killed at %d of %d pairs delivered", len(k.delivered()), len(want))

			// Away: events are still accepted at once, and readiness says
			// what is missing without taking the API out of rotation.
			var slowest time.Duration
			for _, e := range events[100:] {
				start := time.Now()
				body := fmt.Sprintf(`{"organization_id": %q, "event_id": %q, "asset": {"id": %q, "video": {"status": "Completed"}}}`, e.org, e.id, e.id)
				if status, _, b := send("POST", s.api+"/internal/v1/asset-events/", s.service, body); status != 202 {
					t.Fatalf("event %s with Temporal down: %d %s, want 202", e.id, status, b)
				}
				slowest = max(slowest, time.Since(start))
			}
			if slowest > time.Second {
				t.Errorf("an event POST took %v with Temporal down, want well under a second", slowest)
			}
			status, _, b := send("GET", s.api+"/readyz", "", "")
			var ready struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(b, &ready); err != nil || status != 200 || ready.Checks["temporal"] != "unavailable" || ready.Checks["database"] != "ok" {
				t.Errorf("api /readyz with Temporal down: %d %s, want 200 naming temporal unavailable", status, b)
			}
			time.Sleep(10 * time.Second)
			if !worker.running() || !s.apiProc.running() {
				t.Fatal("a process exited while Temporal was down")
			}
			dt.start()
			t.Logf("Temporal back after %v (data lost: %v); slowest event POST while away %v", time.Since(kill).Round(time.Millisecond), tc.lose, slowest.Round(time.Millisecond))
			down := <-posted
			k.waitAll(want, 3*time.Minute)
			s.checkRows(len(want))
			if !tc.lose {
				s.checkWorkflows(len(events))
			}
			noPanic(t, "worker", worker)
			noPanic(t, "api", s.apiProc)
			dups, requests := k.checkIDs()
			for p, first := range dups {
				if first.After(kill) || kill.Sub(first) > 15*time.Second {
					t.Errorf("pair %v delivered twice, but its first success was not in flight at the kill", p)
				}
			}
			t.Logf("accepted %d events (%d pairs), delivered %d pairs, lost 0; requests %d, duplicate successes %d, 503/refused while posting %d/%d",
				len(events), len(want), len(k.delivered()), requests, len(dups), down[0], down[1])
		})
	}
}

// fanSink is one loopback server for thousands of webhooks: /hook/<i>
// answers 200 after checking the signature, and records each request.
type fanSink struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	got    map[int][]string // endpoint → webhook-id of each request
	firsts map[int]time.Time
}

func newFanSink(t *testing.T) *fanSink {
	f := &fanSink{t: t, secret: "fan-secret-" + randomHex(4), got: map[int][]string{}, firsts: map[int]time.Time{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hook/"))
		if err != nil || !validSignature(f.secret, r.Header, body) {
			t.Errorf("fan-out request %s: bad path or signature", r.URL.Path)
		}
		f.mu.Lock()
		f.got[i] = append(f.got[i], r.Header.Get("webhook-id"))
		if _, ok := f.firsts[i]; !ok {
			f.firsts[i] = time.Now()
		}
		f.mu.Unlock()
		w.WriteHeader(200)
	}))
	f.srv.Config.MaxHeaderBytes = 1 << 16
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fanSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *fanSink) waitCount(n int, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for f.count() < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("only %d of %d fan-out webhooks reached in %v", f.count(), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fanoutSize is the width of the fan-out test: 5,000 (issue 11), or
// STREAMHOOKS_TEST_FANOUT.
func fanoutSize(t *testing.T) int {
	n := 5000
	if v := os.Getenv("STREAMHOOKS_TEST_FANOUT"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("STREAMHOOKS_TEST_FANOUT=%q: want a number of webhooks >= 10", v)
		}
	}
	return n
}

// TestFanout5000 sends one event to the 5,000 webhooks of one organization.
// A one-webhook event of another organization signalled in the middle is
// delivered within seconds; the worker is killed with kill -9 part way and
// started again; every one of the 5,000 deliveries ends succeeded, each
// endpoint sees one webhook-id, and the worker's peak RSS is reported.
func TestFanout5000(t *testing.T) {
	n := fanoutSize(t)
	f := newFanSink(t)
	small := newSink(t, ok(0))
	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "wide", "small")
	s.hooks("small", small, 0)

	created := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"url": "%s/hook/%d", "secret_token": %q}`, f.srv.URL, i, f.secret)
				if status, _, b := send("POST", s.api+"/api/v1/wide/webhooks/", s.tokens["wide"], body); status != 201 {
					t.Errorf("create webhook %d: %d %s", i, status, b)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("created %d webhooks in %v", n, time.Since(created).Round(time.Millisecond))

	worker := s.startWorker()
	start := time.Now()
	s.post([]event{{"wide", "fan-1"}}, 1)
	f.waitCount(n/10, 3*time.Minute)

	// A small event in the middle of the fan-out is not starved.
	signalled := time.Now()
	s.post([]event{{"small", "small-1"}}, 1)
	small.waitCount(1, time.Minute)
	smallLatency := time.Since(signalled)
	if smallLatency > 10*time.Second {
		t.Errorf("the one-webhook event took %v during the fan-out, want seconds", smallLatency)
	}
	at := f.count()

	f.waitCount(n*2/5, 5*time.Minute)
	rss := float64(peakRSS(t, worker)) / (1 << 20)
	worker.kill9(t)
	kill := time.Now()
	t.Logf("worker killed at %d of %d webhooks reached (peak RSS %.0f MiB)", f.count(), n, rss)
	worker = s.startWorker()
	f.waitCount(n, 10*time.Minute)
	took := time.Since(start)
	rss = max(rss, float64(peakRSS(t, worker))/(1<<20))
	s.checkRows(n + 1)
	noPanic(t, "worker", worker)

	f.mu.Lock()
	twice := 0
	for i, ids := range f.got {
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Errorf("endpoint %d: webhook-ids %s and %s, want one", i, ids[0], id)
			}
		}
		if len(ids) > 1 {
			twice++
			if first := f.firsts[i]; first.After(kill) || kill.Sub(first) > 15*time.Second {
				t.Errorf("endpoint %d reached twice, but its first request was not in flight at the kill", i)
			}
		}
	}
	f.mu.Unlock()
	t.Logf("fan-out of %d: all delivered in %v (kill -9 of the worker included), lost 0, duplicates %d (in flight at the kill); small event delivered %v after its signal, with %d of %d reached; worker peak RSS %.0f MiB",
		n, took.Round(time.Millisecond), twice, smallLatency.Round(time.Millisecond), at, n, rss)
}
