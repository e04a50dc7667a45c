// Package bench is the throughput and latency harness behind
// "streamhooks bench": a whole system in one process (or, in the
// production shape, the api and worker roles as processes of their own on
// PostgreSQL) measured against the plain-HTTP ceiling of the machine
// (docs/benchmarks.md).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/devserver"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/worker"
)

// Options size a benchmark run (the flags of "streamhooks bench").
type Options struct {
	Events      int
	Webhooks    []int
	Concurrency int
	Rate        int
	// RatePercent, when Rate is 0, sets the fixed rate to this share of
	// the events per second the first saturation scenario delivered.
	RatePercent  int
	Duration     time.Duration
	JSON         bool
	Eager        bool
	ActivitySlot int
	Pollers      int
	// NoTemporalCeiling skips the temporal-ceiling scenario.
	NoTemporalCeiling bool
	// Shape is ShapeDev (everything in this process) or ShapeProduction
	// (production.go).
	Shape string
}

// The shapes of a run.
const (
	ShapeDev        = "dev"
	ShapeProduction = "production"
)

// Result is one scenario's numbers, as the JSON output carries them.
type Result struct {
	Scenario         string `json:"scenario"`
	noRows           bool
	Events           int     `json:"events"`
	WebhooksPerEvent int     `json:"webhooks_per_event"`
	EventsPerSec     float64 `json:"events_accepted_per_sec"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	Received         int64   `json:"received_at_receiver"`
	SucceededRows    int64   `json:"succeeded_rows"`
	RatioToCeiling   float64 `json:"ratio_to_ceiling"`
	P50ms            float64 `json:"p50_ms"`
	P95ms            float64 `json:"p95_ms"`
	P99ms            float64 `json:"p99_ms"`
	// AcceptP50ms and AcceptP99ms time the signal itself: from sending the
	// POST to its 202 (or, for temporal-ceiling, the workflow start).
	AcceptP50ms   float64 `json:"accept_p50_ms"`
	AcceptP99ms   float64 `json:"accept_p99_ms"`
	CPUSecPer1000 float64 `json:"cpu_seconds_per_1000_deliveries"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	ElapsedSec    float64 `json:"elapsed_sec"`
	// VsTemporal is DeliveriesPerSec over the temporal-ceiling's, and
	// CPUmsOverTemporal the CPU per delivery beyond it (ms), when that
	// scenario ran.
	VsTemporal        float64 `json:"ratio_to_temporal_ceiling,omitempty"`
	CPUmsOverTemporal float64 `json:"cpu_ms_per_delivery_over_temporal_ceiling,omitempty"`
	CeilingRequestsPS float64 `json:"-"`
}

// receiver is the loopback endpoint every webhook points at. It
// counts requests and remembers when the first attempt of each event (asset
// id = event id) arrived.
type receiver struct {
	count atomic.Int64
	mu    sync.Mutex
	first map[string]time.Time
	url   string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	r.count.Add(1)
	if i := bytes.Index(body, []byte(`"id":"`)); i >= 0 {
		rest := body[i+6:]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			id := string(rest[:j])
			r.mu.Lock()
			if _, ok := r.first[id]; !ok {
				r.first[id] = now
			}
			r.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Input is what Run needs: the sizes of the run, the settings (only
// DATABASE_URL is used: a run against PostgreSQL when set, else a SQLite
// file in a temporary directory; the production shape's server for its own
// databases) and where the results and the progress line go.
type Input struct {
	Options Options
	Config  config.Config
	Stdout  io.Writer
	Stderr  io.Writer
}

// Run starts a whole system in this process (store, embedded Temporal, a
// worker, the API and a loopback receiver), runs the scenarios and prints
// the results, as JSON with Options.JSON (docs/benchmarks.md). With
// Options.Shape ShapeProduction it runs the production roles instead
// (runProduction).
func Run(ctx context.Context, in Input) error {
	if in.Options.Shape == ShapeProduction {
		return runProduction(ctx, in)
	}
	cfg, bc, stdout, stderr := in.Config, in.Options, in.Stdout, in.Stderr
	dir, err := os.MkdirTemp("", "streamhooks-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.DatabaseURL == "" {
		cfg.DataDir = dir
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := roles.OpenStore(ctx, &cfg, true)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg.SecretKey = models.NewSecretKey()
	if err := cfg.UseSecretKey(store, ""); err != nil {
		return err
	}

	addrs := make([]string, 4)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addrs[i] = ln.Addr().String()
		_ = ln.Close()
	}
	et, err := devserver.Start(devserver.Config{DataDir: dir, FrontendAddr: addrs[0], UIAddr: addrs[1]})
	if err != nil {
		return err
	}
	defer et.Stop()
	cfg.TemporalAddress, cfg.TemporalNamespace = addrs[0], devserver.Namespace
	c, err := roles.DialTemporal(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	// No retry schedule, timeout or metrics of its own: the activities'
	// defaults, as the bench always measured.
	w := worker.Assemble(worker.Config{Client: c, Store: store, Allowed: egress.LoopbackCIDRs, UserAgent: "streamhooks/bench", Logger: log,
		Options: worker.Options{MaxConcurrentActivities: bc.ActivitySlot,
			MaxConcurrentActivityPollers: bc.Pollers, MaxConcurrentWorkflowPollers: bc.Pollers}}).Worker
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	// The starter the dev mode uses: search attributes on, eager start.
	starter := roles.NewStarter(ctx, c, &cfg, log)
	starter.EagerStart = bc.Eager
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	apiCtx, stopAPI := context.WithCancel(ctx)
	defer stopAPI()
	// Events start as in every run mode: through the outbox, after commit.
	outbox := service.NewOutbox(store, starter, log, nil)
	go outbox.Run(apiCtx)
	go func() {
		_ = roles.ServeHTTP(apiCtx, apiLn, api.New(api.Config{Store: store, Workflows: starter, Outbox: outbox, Registry: prometheus.NewRegistry()}), log)
	}()
	recv := &receiver{first: map[string]time.Time{}}
	recvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv.url = "http://" + recvLn.Addr().String()
	go func() { _ = roles.ServeHTTP(apiCtx, recvLn, recv, log) }()
	svc, err := store.CreateToken(ctx, models.ScopeService, "")
	if err != nil {
		return err
	}
	b := &bench{cfg: bc, store: store, api: "http://" + apiLn.Addr().String(), svc: svc, recv: recv, progress: stderr,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: bc.Concurrency * 2}}, meter: processMeter{}, temporal: c}
	return b.runAll(ctx, stdout, header{shape: ShapeDev, database: store.Dialect(), eager: bc.Eager, cpu: "process", rss: "process"})
}

// header is what the output says of the run beside the results: its
// shape, app database, eager start and how CPU and RSS are counted. The
// text output prints lines above the ceiling line (the production shape's;
// the dev shape has none, so its text is as it always was).
type header struct {
	shape, database string
	eager           bool
	cpu, rss        string // JSON: "process", "machine", "bench+api+worker"
	lines           []string
}

// runAll measures the ceiling, runs every scenario and prints the results.
func (b *bench) runAll(ctx context.Context, stdout io.Writer, h header) error {
	bc, stderr := b.cfg, b.progress
	ceiling := b.ceiling(ctx, bc.Events*max(slices.Max(bc.Webhooks), 1))
	var results []Result
	if !bc.NoTemporalCeiling && b.temporal != nil {
		r, err := b.temporalCeiling(ctx, b.temporal, ceiling, worker.SDKOptions(worker.Options{MaxConcurrentActivities: bc.ActivitySlot,
			MaxConcurrentActivityPollers: bc.Pollers, MaxConcurrentWorkflowPollers: bc.Pollers}))
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	for _, n := range bc.Webhooks {
		r, err := b.saturation(ctx, n, ceiling)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if bc.Rate == 0 && bc.RatePercent > 0 {
		if i := slices.IndexFunc(results, func(r Result) bool { return strings.HasPrefix(r.Scenario, "saturation-") }); i >= 0 {
			r := results[i]
			b.cfg.Rate = max(1, int(r.DeliveriesPerSec/float64(r.WebhooksPerEvent)*float64(bc.RatePercent)/100))
		}
	}
	if b.cfg.Rate > 0 {
		r, err := b.fixedRate(ctx, ceiling)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Fprint(stderr, "\r\033[K")
	relateToTemporalCeiling(results)
	if bc.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"ceiling_requests_per_sec": ceiling, "database": h.database, "eager_start": h.eager, "results": results,
			"shape": h.shape, "cpu_accounting": h.cpu, "rss_accounting": h.rss})
	}
	for _, l := range h.lines {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintf(stdout, "ceiling (plain net/http POSTs, concurrency %d): %.0f req/s; app database: %s; eager start: %v\n\n",
		bc.Concurrency, ceiling, h.database, h.eager)
	fmt.Fprintf(stdout, "%-22s %7s %5s %10s %10s %12s %8s %8s %8s %8s %8s %10s %9s %8s\n",
		"scenario", "events", "hooks", "events/s", "accept p99", "deliveries/s", "ratio", "vs temp", "p50 ms", "p95 ms", "p99 ms", "cpu s/1k", "cpu +ms", "rss MB")
	for _, r := range results {
		fmt.Fprintf(stdout, "%-22s %7d %5d %10.0f %10.1f %12.0f %8.3f %8.2f %8.1f %8.1f %8.1f %10.2f %+9.2f %8.0f\n", r.Scenario, r.Events, r.WebhooksPerEvent,
			r.EventsPerSec, r.AcceptP99ms, r.DeliveriesPerSec, r.RatioToCeiling, r.VsTemporal, r.P50ms, r.P95ms, r.P99ms, r.CPUSecPer1000, r.CPUmsOverTemporal, r.PeakRSSMB)
	}
	for _, r := range results {
		if !r.noRows && r.SucceededRows != r.Received && r.Received < int64(r.Events*r.WebhooksPerEvent) {
			fmt.Fprintf(stdout, "WARNING %s: %d received, %d succeeded rows\n", r.Scenario, r.Received, r.SucceededRows)
		}
	}
	return nil
}

type bench struct {
	// temporal, when set, is the client of the server the system runs on,
	// for the temporal-ceiling scenario (the dev shape).
	temporal client.Client
	cfg      Options
	store    *models.Store
	api      string
	svc      string
	recv     *receiver
	client   *http.Client
	progress io.Writer
	runs     int
	meter    meter
}

// meter measures a scenario's CPU seconds and peak RSS.
type meter interface {
	reset() // starts a new peak-RSS window
	cpuSeconds() float64
	peakRSSMB() float64
}

// processMeter counts this process only: the dev shape, where this
// process is the whole system.
type processMeter struct{}

func (processMeter) reset()              { resetPeakRSS("self") }
func (processMeter) cpuSeconds() float64 { return cpuSeconds() }
func (processMeter) peakRSSMB() float64  { return peakRSSMB("self") }

// ceiling measures plain keep-alive POSTs of the same payload to the same
// receiver at the same concurrency: what the machine allows at best.
func (b *bench) ceiling(ctx context.Context, n int) float64 {
	body := []byte(`{"id":"ceiling","title":"bench","type":"video","video":{"status":"Completed"}}`)
	start := time.Now()
	b.parallel(ctx, n, func(int) {
		resp, err := b.client.Post(b.recv.url+"/ceiling", "application/json", bytes.NewReader(body))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	return float64(n) / time.Since(start).Seconds()
}

// parallel runs f(0..n-1) on the configured concurrency.
func (b *bench) parallel(ctx context.Context, n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range b.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// setup creates a fresh organization with hooks webhooks to the receiver.
func (b *bench) setup(ctx context.Context, hooks int) (string, error) {
	b.runs++
	org := fmt.Sprintf("bench%d-%d", b.runs, time.Now().UnixNano()%1e9)
	if _, err := b.store.CreateOrganization(ctx, org, ""); err != nil {
		return "", err
	}
	for i := range hooks {
		u := fmt.Sprintf("%s/%s/%d", b.recv.url, org, i)
		if _, err := b.store.CreateWebhook(ctx, org, models.WebhookUpdate{URL: &u, SecretToken: ptrTo(benchSecret)}); err != nil {
			return "", err
		}
	}
	return org, nil
}

func ptrTo[T any](v T) *T { return &v }

// benchSecret is every bench webhook's secret token.
const benchSecret = "bench-secret"

// assetJSON is the asset every bench event carries, about 1 KiB like a
// video asset of the platform; its id (first, where the receiver looks)
// is the event id, by which the receiver times the first attempt.
func assetJSON(id string) []byte {
	return []byte(`{"id":"` + id + `","title":"bench asset","bytes":104857600,"type":"video",` +
		`"video":{"progress":100,"thumbnails":["https://cdn.example.com/thumbs/1.png","https://cdn.example.com/thumbs/2.png"],` +
		`"status":"Completed","playback_url":"https://cdn.example.com/videos/master.m3u8","dash_url":"https://cdn.example.com/videos/manifest.mpd",` +
		`"preview_thumbnail_url":"https://cdn.example.com/preview.png","cover_thumbnail_url":"https://cdn.example.com/cover.png",` +
		`"format":"abr","resolutions":["240p","360p","480p","720p","1080p"],"video_codec":"h264","audio_codec":"aac",` +
		`"enable_drm":true,"tracks":[{"type":"Playlist","name":"English","url":"https://cdn.example.com/tracks/en.m3u8","bytes":2048,` +
		`"language":"en","width":1920,"height":1080,"duration":3600,"is_active":true}],"inputs":[{"url":"https://uploads.example.com/source.mp4"}],` +
		`"transmux_only":false,"duration":3600,"content_protection_type":"drm","generate_subtitle":false},` +
		`"live_stream":null,"parent_id":null,"parent":null,"folder_tree":"bench/2026/12","created":"2026-12-07T10:00:00Z",` +
		`"updated":"2026-12-07T10:30:00Z","tags":["bench","load","video"],"meta":{"source":"streamhooks bench","note":"` +
		`"}}`)
}

// relateToTemporalCeiling sets each result's ratio to the temporal-ceiling
// scenario and its CPU per delivery beyond it.
func relateToTemporalCeiling(results []Result) {
	i := slices.IndexFunc(results, func(r Result) bool { return r.Scenario == "temporal-ceiling" })
	if i < 0 || results[i].DeliveriesPerSec == 0 {
		return
	}
	tc := results[i]
	for j := range results {
		if j == i {
			continue
		}
		results[j].VsTemporal = results[j].DeliveriesPerSec / tc.DeliveriesPerSec
		results[j].CPUmsOverTemporal = results[j].CPUSecPer1000 - tc.CPUSecPer1000
	}
}

// signal posts one event; it returns when the API accepted it.
func (b *bench) signal(org, id string) (time.Time, error) {
	body := `{"organization_id":"` + org + `","event_id":"` + id + `","asset":` + string(assetJSON(id)) + `}`
	req, _ := http.NewRequest(http.MethodPost, b.api+"/internal/v1/asset-events/", strings.NewReader(body))
	req.Header.Set("Authorization", "Token "+b.svc)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return time.Time{}, fmt.Errorf("signal %s: status %d", id, resp.StatusCode)
	}
	return time.Now(), nil
}

// stamp is one signal: when it was sent and when it was accepted.
type stamp struct{ sent, at time.Time }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scenario is one run: events to a fresh organization with hooks
// webhooks, sent by send, which records when the API accepted each.
type scenario struct {
	name          string
	hooks, events int
	// noRows: the scenario writes no delivery rows to check.
	noRows bool
	send   func(org string, accepted []stamp) error
}

// run drives one scenario: send, wait for every delivery, measure.
func (b *bench) run(ctx context.Context, sc scenario, ceiling float64) (Result, error) {
	name, hooks, events, send := sc.name, sc.hooks, sc.events, sc.send
	org, err := b.setup(ctx, hooks)
	if err != nil {
		return Result{}, err
	}
	want := int64(events * hooks)
	base := b.recv.count.Load()
	b.meter.reset()
	cpu0 := b.meter.cpuSeconds()
	start := time.Now()
	accepted := make([]stamp, events)
	stop := b.progressLine(name, base, want)
	if err := send(org, accepted); err != nil {
		stop()
		return Result{}, err
	}
	sent := time.Since(start)
	deadline := time.Now().Add(5*time.Minute + time.Duration(events)*20*time.Millisecond)
	for b.recv.count.Load()-base < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	got := b.recv.count.Load() - base
	r := Result{
		Scenario: name, Events: events, WebhooksPerEvent: hooks, Received: got, ElapsedSec: elapsed.Seconds(),
		EventsPerSec: float64(events) / sent.Seconds(), DeliveriesPerSec: float64(got) / elapsed.Seconds(),
		PeakRSSMB: b.meter.peakRSSMB(), CeilingRequestsPS: ceiling, noRows: sc.noRows,
	}
	r.RatioToCeiling = r.DeliveriesPerSec / ceiling
	if got > 0 {
		r.CPUSecPer1000 = (b.meter.cpuSeconds() - cpu0) / float64(got) * 1000
	}
	var lat, acc []float64
	b.recv.mu.Lock()
	for i := range events {
		if accepted[i].at.IsZero() {
			continue
		}
		acc = append(acc, ms(accepted[i].at.Sub(accepted[i].sent)))
		if t, ok := b.recv.first[fmt.Sprintf("%s-%d", org, i)]; ok {
			lat = append(lat, ms(t.Sub(accepted[i].at)))
		}
	}
	b.recv.mu.Unlock()
	r.P50ms, r.P95ms, r.P99ms = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
	r.AcceptP50ms, r.AcceptP99ms = percentile(acc, 50), percentile(acc, 99)
	if sc.noRows {
		return r, nil
	}
	// The receiver sees a request just before its attempt row commits.
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r.SucceededRows = b.succeeded(ctx, org)
		if r.SucceededRows >= got || time.Now().After(wait) || ctx.Err() != nil {
			break
		}
	}
	return r, nil
}

func (b *bench) saturation(ctx context.Context, hooks int, ceiling float64) (Result, error) {
	name := fmt.Sprintf("saturation-%dhook", hooks)
	return b.run(ctx, scenario{name: name, hooks: hooks, events: b.cfg.Events, send: func(org string, accepted []stamp) error {
		var firstErr atomic.Value
		b.parallel(ctx, len(accepted), func(i int) {
			sent := time.Now()
			t, err := b.signal(org, fmt.Sprintf("%s-%d", org, i))
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			accepted[i] = stamp{sent: sent, at: t}
		})
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
		return nil
	}}, ceiling)
}

// fixedRate offers cfg.Rate events per second for cfg.Duration to one
// webhook each: the latency scenario.
func (b *bench) fixedRate(ctx context.Context, ceiling float64) (Result, error) {
	n := int(float64(b.cfg.Rate) * b.cfg.Duration.Seconds())
	name := fmt.Sprintf("fixed-%d-ev/s", b.cfg.Rate)
	return b.run(ctx, scenario{name: name, hooks: 1, events: n, send: func(org string, accepted []stamp) error {
		interval := time.Second / time.Duration(b.cfg.Rate)
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent := time.Now()
				t, err := b.signal(org, fmt.Sprintf("%s-%d", org, i))
				if err != nil {
					failed.Add(1)
					return
				}
				accepted[i] = stamp{sent: sent, at: t}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			return fmt.Errorf("%d signals failed", f)
		}
		return nil
	}}, ceiling)
}

// succeeded counts the organization's succeeded delivery rows.
func (b *bench) succeeded(ctx context.Context, org string) int64 {
	hooks, _, err := b.store.ListWebhooks(ctx, org, models.Page{Limit: 1000})
	if err != nil {
		return -1
	}
	var total int64
	for _, h := range hooks {
		_, n, err := b.store.ListWebhookDeliveries(ctx, org, h.ID, models.DeliveryFilter{State: models.DeliverySucceeded}, models.Page{Limit: 1})
		if err != nil {
			return -1
		}
		total += n
	}
	return total
}

func (b *bench) progressLine(name string, base, want int64) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(b.progress, "\r\033[K%s: %d/%d deliveries received", name, b.recv.count.Load()-base, want)
			}
		}
	}()
	return func() { close(done) }
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMB reads the process's peak resident set (VmHWM); proc is "self"
// or a pid.
// resetPeakRSS starts a new peak-RSS window (Linux: writing 5 to
// clear_refs resets VmHWM), so each scenario reports its own peak rather
// than the largest of the run so far. Memory the earlier scenarios still
// hold counts, as it would in a long-running process.
func resetPeakRSS(proc string) {
	_ = os.WriteFile(filepath.Join("/proc", proc, "clear_refs"), []byte("5"), 0)
}

func peakRSSMB(proc string) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", proc, "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
