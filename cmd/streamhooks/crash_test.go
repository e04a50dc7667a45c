package main_test

// Process-level reliability tests (issue 7): the production roles run as
// separate OS processes against real PostgreSQL and a real Temporal server,
// so they can be SIGKILLed and their dependencies restarted mid-run. Every
// test checks that each (event, webhook) pair reaches its receiver, that
// repeated requests of a pair carry one webhook-id, and that no workflow
// failed. docs/reliability.md lists what each test proves.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the row checks
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// hit is one request seen by a sink endpoint.
type hit struct {
	endpoint  int
	webhookID string
	asset     string
	start     time.Time
	end       time.Time // zero while the request is held
	status    int
}

// behaviour scripts an endpoint: the status and how long to hold the
// request, given how many requests this webhook-id has made so far (1 for
// the first).
type behaviour func(n int) (status int, hold time.Duration)

// ok answers 200 after holding the request.
func ok(hold time.Duration) behaviour {
	return func(int) (int, time.Duration) { return 200, hold }
}

// failFirst answers status to the first n requests of each delivery, then
// 200 after holding the request.
func failFirst(n, status int, hold time.Duration) behaviour {
	return func(seen int) (int, time.Duration) {
		if seen <= n {
			return status, 0
		}
		return 200, hold
	}
}

// sink is a set of loopback webhook endpoints that verify every signature
// and record every request.
type sink struct {
	t       *testing.T
	mu      sync.Mutex
	hits    []*hit
	perID   map[string]int
	urls    []string
	secrets []string
}

func newSink(t *testing.T, behaviours ...behaviour) *sink {
	s := &sink{t: t, perID: map[string]int{}}
	for i, b := range behaviours {
		secret := fmt.Sprintf("crash-secret-%d", i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if !validSignature(secret, r.Header, body) || r.Header.Get("x-streams-token") != secret {
				t.Errorf("endpoint %d: bad signature or token on %s", i, r.Header.Get("webhook-id"))
			}
			var asset struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(body, &asset)
			h := &hit{endpoint: i, webhookID: r.Header.Get("webhook-id"), asset: asset.ID, start: time.Now()}
			s.mu.Lock()
			s.hits = append(s.hits, h)
			s.perID[h.webhookID]++
			n := s.perID[h.webhookID]
			s.mu.Unlock()
			status, hold := b(n)
			if hold > 0 {
				select {
				case <-time.After(hold):
				case <-r.Context().Done():
				}
			}
			w.WriteHeader(status)
			s.mu.Lock()
			h.end, h.status = time.Now(), status
			s.mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		s.urls = append(s.urls, srv.URL+"/hook")
		s.secrets = append(s.secrets, secret)
	}
	return s
}

type pair struct {
	endpoint int
	asset    string
}

// delivered returns the pairs that got a 2xx answer.
func (s *sink) delivered() map[pair]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[pair]bool{}
	for _, h := range s.hits {
		if h.status >= 200 && h.status < 300 {
			out[pair{h.endpoint, h.asset}] = true
		}
	}
	return out
}

// waitCount waits until n pairs were answered 2xx.
func (s *sink) waitCount(n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(s.delivered()) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("only %d pairs delivered in %v, want %d", len(s.delivered()), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAll waits until every expected pair was answered 2xx.
func (s *sink) waitAll(want map[pair]bool, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.delivered()
		missing := 0
		for p := range want {
			if !got[p] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d of %d (event, webhook) pairs never delivered", missing, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkIDs verifies that every request of a pair carried one webhook-id and
// that no two pairs shared one; it returns the pairs answered 2xx more than
// once with the start of their first 2xx request.
func (s *sink) checkIDs() (dups map[pair]time.Time, requests int) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[pair]string{}
	owner := map[string]pair{}
	first := map[pair]time.Time{}
	ok := map[pair]int{}
	for _, h := range s.hits {
		p := pair{h.endpoint, h.asset}
		if id, seen := ids[p]; seen && id != h.webhookID {
			s.t.Errorf("pair %v: webhook-ids %s and %s, want one", p, id, h.webhookID)
		}
		ids[p] = h.webhookID
		if o, seen := owner[h.webhookID]; seen && o != p {
			s.t.Errorf("webhook-id %s used by %v and %v", h.webhookID, o, p)
		}
		owner[h.webhookID] = p
		if h.status >= 200 && h.status < 300 {
			if ok[p] == 0 {
				first[p] = h.start
			}
			ok[p]++
		}
	}
	dups = map[pair]time.Time{}
	for p, n := range ok {
		if n > 1 {
			dups[p] = first[p]
		}
	}
	return dups, len(s.hits)
}

// prodStack is the production shape: PostgreSQL, a Temporal server (in this
// test process, reached over gRPC), and `streamhooks api` and
// `streamhooks worker` as child processes.
type prodStack struct {
	t        *testing.T
	dbURL    string
	env      []string
	api      string
	apiProc  *process
	procs    []*process // every api and worker process started, for the log greps
	temporal client.Client
	ns       string
	tokens   map[string]string
	service  string
}

// temporalTarget is the Temporal server a prodStack uses.
type temporalTarget struct {
	frontend, namespace string
	client              client.Client
}

// newProdStack runs the roles against a Temporal server in this test
// process.
func newProdStack(t *testing.T, dbURL string, orgs ...string) *prodStack {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	return newProdStackOn(t, dbURL, temporalTarget{frontend: ts.GetFrontendHostPort(), namespace: ts.GetDefaultNamespace(), client: ts.GetDefaultClient()}, orgs...)
}

// newProdStackOn runs the roles against the given Temporal server. The
// reconciler runs every 2 s with a 5 s grace, so the tests see it act.
func newProdStackOn(t *testing.T, dbURL string, tt temporalTarget, orgs ...string) *prodStack {
	t.Helper()
	s := &prodStack{t: t, dbURL: dbURL, api: "http://" + freeAddr(t), temporal: tt.client, ns: tt.namespace, tokens: map[string]string{}}
	s.env = []string{
		"DATABASE_URL=" + dbURL,
		"STREAMHOOKS_SECRET_KEY=" + base64.StdEncoding.EncodeToString(modelstest.TestSecretKey),
		"TEMPORAL_ADDRESS=" + tt.frontend,
		"TEMPORAL_NAMESPACE=" + tt.namespace,
		"STREAMHOOKS_RECONCILE_INTERVAL=2s",
		"STREAMHOOKS_RECONCILE_GRACE=5s",
		"STREAMHOOKS_TASK_QUEUE=crash-" + randomHex(4),
		"STREAMHOOKS_ALLOWED_TARGET_CIDRS=127.0.0.0/8",
		"STREAMHOOKS_RETRY_SCHEDULE=500ms,1s,1s,2s,2s,4s,4s,4s",
		"STREAMHOOKS_ATTEMPT_TIMEOUT=2s",
		"STREAMHOOKS_LOG_LEVEL=debug", // the most the logs ever say, for the secret greps
		"STREAMHOOKS_API_ADDR=" + strings.TrimPrefix(s.api, "http://"),
	}
	mig := exec.Command(binary, "migrate")
	mig.Env = append(os.Environ(), s.env...)
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	store, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.SetSecretKey(modelstest.TestSecretKey); err != nil {
		t.Fatal(err)
	}
	for _, org := range orgs {
		s.tokens[org] = modelstest.Org(t, store, org)
	}
	s.service = modelstest.ServiceToken(t, store)
	s.apiProc = startProcess(t, s.env, "api")
	s.procs = append(s.procs, s.apiProc)
	s.waitReady(30 * time.Second)
	return s
}

func (s *prodStack) startWorker() *process {
	p := startProcess(s.t, s.env, "worker")
	s.procs = append(s.procs, p)
	return p
}

// checkLogs greps the output of every process for the secrets: webhook
// secrets and API tokens must never be logged, at any level.
func (s *prodStack) checkLogs(secrets ...string) {
	s.t.Helper()
	lines := 0
	for _, p := range s.procs {
		out, errOut := p.output()
		lines += strings.Count(out+errOut, "\n")
		for _, secret := range secrets {
			if strings.Contains(out+errOut, secret) {
				s.t.Errorf("a process logged the secret %q", secret)
			}
		}
	}
	if lines == 0 {
		s.t.Error("no log lines at all: the grep proves nothing")
	}
	s.t.Logf("grepped %d log lines of %d processes for %d secrets", lines, len(s.procs), len(secrets))
}

func (s *prodStack) waitReady(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, errOut := s.apiProc.output()
	s.t.Fatalf("api not ready:\n%s\n%s", out, errOut)
}

// send makes one HTTP request and returns the status, headers and body, or
// status 0 when the connection failed.
func send(method, url, token, body string) (int, http.Header, []byte) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Token "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// hooks registers every sink endpoint as a webhook of org.
func (s *prodStack) hooks(org string, k *sink, endpoints ...int) {
	s.t.Helper()
	for _, i := range endpoints {
		body := fmt.Sprintf(`{"url": %q, "secret_token": %q}`, k.urls[i], k.secrets[i])
		if status, _, b := send("POST", s.api+"/api/v1/"+org+"/webhooks/", s.tokens[org], body); status != 201 {
			s.t.Fatalf("create webhook: %d %s", status, b)
		}
	}
}

type event struct{ org, id string }

// post signals events with `workers` concurrent clients and retries like a
// well-behaved platform service: a 503 (JSON, with Retry-After) or a refused
// connection is retried, anything else but 202 fails the test. It returns
// how many 503s and refused connections it saw.
func (s *prodStack) post(events []event, workers int) (unavailable, refused int) {
	var mu sync.Mutex
	ch := make(chan event)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ch {
				body := fmt.Sprintf(`{"organization_id": %q, "event_id": %q, "asset": {"id": %q, "video": {"status": "Completed"}}}`, e.org, e.id, e.id)
				began := time.Now()
				for {
					status, h, b := send("POST", s.api+"/internal/v1/asset-events/", s.service, body)
					if status == 202 {
						break
					}
					mu.Lock()
					switch status {
					case 0:
						refused++
					case 503:
						unavailable++
						var m map[string]any
						if json.Unmarshal(b, &m) != nil || m["detail"] == nil || h.Get("Retry-After") == "" {
							s.t.Errorf("503 without a JSON detail and Retry-After: %s", b)
						}
					default:
						s.t.Errorf("event %s: got %d %s, want 202 or 503", e.id, status, b)
					}
					mu.Unlock()
					if status != 0 && status != 503 || time.Since(began) > 10*time.Minute {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for _, e := range events {
		ch <- e
	}
	close(ch)
	wg.Wait()
	return unavailable, refused
}

// checkWorkflows waits until no delivery workflow runs and checks that
// every one completed.
func (s *prodStack) checkWorkflows(want int) {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts := map[string]int{}
		runs := map[string][]string{}
		var token []byte
		for {
			resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.ns, PageSize: 1000, NextPageToken: token})
			if err != nil {
				s.t.Fatal(err)
			}
			for _, e := range resp.Executions {
				counts[e.GetStatus().String()]++
				id := e.GetExecution().GetWorkflowId()
				runs[id] = append(runs[id], e.GetType().GetName()+" "+e.GetStatus().String()+" "+e.GetStartTime().AsTime().Format(time.StampMilli)+"–"+e.GetCloseTime().AsTime().Format(time.StampMilli))
			}
			if token = resp.NextPageToken; len(token) == 0 {
				break
			}
		}
		if counts["Completed"] == want && len(counts) == 1 {
			return
		}
		if time.Now().After(deadline) {
			var many []string
			for id, rs := range runs {
				if len(rs) > 1 {
					many = append(many, fmt.Sprintf("%s: %v", id, rs))
				}
			}
			s.t.Fatalf("workflows by status %v, want %d Completed and nothing else; ids with several runs: %v", counts, want, many)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkRows checks the audit trail: every delivery succeeded and has a
// succeeded attempt row. The receiver counts a request when it arrives and
// the worker records it after the answer, and a request in flight at a
// kill -9 is recorded only by its retry (attempt timeout plus the
// reconciler's grace): so the rows are given up to a minute to settle, and
// the time they took is logged.
func (s *prodStack) checkRows(want int) {
	s.t.Helper()
	db, err := sql.Open("pgx", s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	began := time.Now()
	for {
		var total, succeeded, audited int
		err = db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.response_status BETWEEN 200 AND 299))
			FROM deliveries d`).Scan(&total, &succeeded, &audited)
		if err != nil {
			s.t.Fatal(err)
		}
		if total == want && succeeded == want && audited == want {
			if d := time.Since(began); d > time.Second {
				s.t.Logf("delivery rows settled %v after the receiver saw every request", d.Round(time.Millisecond))
			}
			return
		}
		if total > want || time.Since(began) > time.Minute {
			s.t.Fatalf("deliveries: %d rows, %d succeeded, %d with a 2xx attempt row; want %d each; not succeeded: %s",
				total, succeeded, audited, want, s.unsettled(db))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unsettled describes a few deliveries that have not succeeded, for a
// failure message.
func (s *prodStack) unsettled(db *sql.DB) string {
	rows, err := db.Query(`SELECT d.id, d.state, (SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id)
		FROM deliveries d WHERE d.state <> 'succeeded' ORDER BY d.id LIMIT 5`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, state string
		var attempts int
		if err := rows.Scan(&id, &state, &attempts); err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("%s %s after %d attempts", id, state, attempts))
	}
	return strings.Join(out, "; ")
}

// noPanic checks a process's stderr.
func noPanic(t *testing.T, name string, p *process) {
	t.Helper()
	_, errOut := p.output()
	if strings.Contains(errOut, "panic") || strings.Contains(errOut, "fatal error") {
		t.Fatalf("%s panicked:\n%s", name, errOut)
	}
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func (p *process) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func pairsOf(events []event, endpoints map[string][]int) map[pair]bool {
	want := map[pair]bool{}
	for _, e := range events {
		for _, i := range endpoints[e.org] {
			want[pair{i, e.id}] = true
		}
	}
	return want
}

// TestWorkerKill9 SIGKILLs the worker twice while 240 events of two
// organizations (five webhooks) are in flight, restarting it each time.
func TestWorkerKill9(t *testing.T) {
	k := newSink(t,
		ok(20*time.Millisecond),
		failFirst(1, 503, 50*time.Millisecond),
		ok(400*time.Millisecond), // slow
		ok(150*time.Millisecond),
		failFirst(2, 500, 0),
	)
	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "org1", "org2")
	endpoints := map[string][]int{"org1": {0, 1, 2}, "org2": {3, 4}}
	s.hooks("org1", k, 0, 1, 2)
	s.hooks("org2", k, 3, 4)
	var events []event
	for i := range 120 {
		events = append(events, event{"org1", fmt.Sprintf("o1-%03d", i)}, event{"org2", fmt.Sprintf("o2-%03d", i)})
	}
	want := pairsOf(events, endpoints)

	worker := s.startWorker()
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		if unavailable, refused := s.post(events, 8); unavailable+refused != 0 {
			t.Errorf("the API answered %d 503s and refused %d connections while only the worker was down", unavailable, refused)
		}
	}()

	var kills []time.Time
	for _, at := range []float64{0.2, 0.55} {
		k.waitCount(int(at*float64(len(want))), 90*time.Second)
		noPanic(t, "worker", worker)
		worker.kill9(t)
		kills = append(kills, time.Now())
		t.Logf("kill %d at %d of %d pairs delivered", len(kills), len(k.delivered()), len(want))
		time.Sleep(time.Second)
		worker = s.startWorker()
	}
	<-posted
	k.waitAll(want, 3*time.Minute)
	s.checkWorkflows(len(events))
	s.checkRows(len(want))
	noPanic(t, "worker", worker)
	noPanic(t, "api", s.apiProc)
	s.checkLogs(append(append([]string(nil), k.secrets...), s.service, s.tokens["org1"], s.tokens["org2"])...)

	dups, requests := k.checkIDs()
	for p, first := range dups {
		// A duplicate is allowed only when its first 2xx was in flight at a
		// kill: sent before it, and recent enough that the worker may not
		// yet have reported the result to Temporal.
		near := false
		for _, kill := range kills {
			if !first.After(kill) && kill.Sub(first) < 15*time.Second {
				near = true
			}
		}
		if !near {
			t.Errorf("pair %v delivered twice, but its first success at %v was not in flight at a kill (%v)", p, first.Format(time.StampMilli), kills)
		}
	}
	t.Logf("events %d, pairs %d, requests %d, kills %d, duplicate successes %d, losses 0", len(events), len(want), requests, len(kills), len(dups))
}

// pgCluster is a private PostgreSQL server, so a test can crash and restart
// it without disturbing other tests that share the machine's server.
type pgCluster struct {
	t     *testing.T
	bin   string
	data  string
	port  string
	runAs []string
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs a private PostgreSQL server: "+format, args...)
		}
		t.Skipf("no private PostgreSQL server: "+format, args...)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			found = []string{p}
		} else {
			unavailable("initdb not found")
		}
	}
	sort.Strings(found)
	root, err := os.MkdirTemp("", "streamhooks-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	c := &pgCluster{t: t, bin: filepath.Dir(found[len(found)-1]), data: filepath.Join(root, "data"), port: strings.TrimPrefix(freeAddr(t), "127.0.0.1:")}
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 { // PostgreSQL refuses to run as root
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "postgres:postgres", c.data).CombinedOutput(); err != nil {
			unavailable("chown to the postgres user: %v %s", err, out)
		}
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync"); err != nil {
		unavailable("initdb: %v %s", err, out)
	}
	c.start()
	t.Cleanup(func() { _, _ = c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop") })
	return c
}

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	argv := append(append(append([]string(nil), c.runAs...), filepath.Join(c.bin, tool)), args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput()
}

func (c *pgCluster) start() {
	c.t.Helper()
	opts := "-p " + c.port + " -k " + c.data + " -c listen_addresses=127.0.0.1"
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		c.t.Fatalf("start PostgreSQL: %v %s", err, out)
	}
}

// crash stops the server the way a power cut would: no shutdown checkpoint,
// every connection dropped.
func (c *pgCluster) crash() {
	c.t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		c.t.Fatalf("stop PostgreSQL: %v %s", err, out)
	}
}

func (c *pgCluster) url() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
}

// pgOutage is how long TestPostgresRestart keeps PostgreSQL down: 2
// minutes (issue 11: longer than any timeout on the delivery path), or
// STREAMHOOKS_TEST_PG_OUTAGE (a Go duration) for longer runs.
func pgOutage(t *testing.T) time.Duration {
	v := os.Getenv("STREAMHOOKS_TEST_PG_OUTAGE")
	if v == "" {
		return 2 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("STREAMHOOKS_TEST_PG_OUTAGE=%q: want a positive Go duration", v)
	}
	return d
}

// TestPostgresRestart crashes PostgreSQL mid-burst and keeps it down for
// pgOutage: the API answers 503 JSON and keeps running, the worker retries
// without giving up, and every event that got a 202 is delivered once the
// database is back, with no delivery left pending, including events that
// clients retried through the whole outage.
func TestPostgresRestart(t *testing.T) {
	pg := newPGCluster(t)
	k := newSink(t,
		ok(30*time.Millisecond),
		failFirst(1, 503, 0),
	)
	s := newProdStack(t, pg.url(), "org1")
	s.hooks("org1", k, 0, 1)
	var events []event
	for i := range 100 {
		events = append(events, event{"org1", fmt.Sprintf("pg-%03d", i)})
	}
	worker := s.startWorker()
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		s.post(events, 4)
	}()
	k.waitCount(40, time.Minute)
	pg.crash()
	down := time.Now()

	// The API stays up and says so in JSON.
	if status, h, b := send("POST", s.api+"/internal/v1/asset-events/", s.service, `{"organization_id": "org1", "event_id": "pg-outage", "asset": {"id": "pg-outage", "video": {"status": "Completed"}}}`); status != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(b), `"detail"`) {
		apiOut, apiLog := s.apiProc.output()
		apiLog = apiOut + apiLog
		t.Fatalf("event during the outage: %d %s, want 503 JSON with Retry-After\napi log:\n%s", status, b, apiLog)
	}
	if status, _, b := send("GET", s.api+"/api/v1/org1/webhooks/", s.tokens["org1"], ""); status != 503 || !strings.Contains(string(b), `"detail"`) {
		t.Fatalf("list during the outage: %d %s, want 503 JSON", status, b)
	}
	if status, _, _ := send("GET", s.api+"/readyz", "", ""); status != 503 {
		t.Fatalf("readyz during the outage: %d, want 503", status)
	}
	if status, _, _ := send("GET", s.api+"/healthz", "", ""); status != 200 {
		t.Fatalf("healthz during the outage: %d, want 200 (the process is alive)", status)
	}
	outage := pgOutage(t)
	for time.Since(down) < outage {
		time.Sleep(time.Second)
		if !s.apiProc.running() || !worker.running() {
			t.Fatal("a process exited during the database outage")
		}
	}
	pg.start()
	t.Logf("PostgreSQL was down for %v", time.Since(down).Round(time.Millisecond))

	events = append(events, event{"org1", "pg-outage"})
	s.post(events[len(events)-1:], 1) // the client's retry
	<-posted
	want := pairsOf(events, map[string][]int{"org1": {0, 1}})
	k.waitAll(want, 3*time.Minute)
	s.checkWorkflows(len(events))
	s.checkRows(len(want))
	noPanic(t, "worker", worker)
	noPanic(t, "api", s.apiProc)
	dups, requests := k.checkIDs()
	t.Logf("accepted %d events (%d pairs) around a %v outage, delivered %d pairs, lost 0; requests %d, duplicate successes %d",
		len(events), len(want), outage, len(k.delivered()), requests, len(dups))
}

// TestDevKill9 SIGKILLs the whole dev process (Temporal server, worker and
// API in one) while events are in flight, restarts it on the same data dir,
// and checks that every accepted event is delivered.
func TestDevKill9(t *testing.T) {
	dataDir := t.TempDir()
	addrs := devAddrs{api: freeAddr(t), temporal: freeAddr(t), ui: freeAddr(t)}
	env := []string{"STREAMHOOKS_RETRY_SCHEDULE=500ms,1s,2s,2s,4s", "STREAMHOOKS_ATTEMPT_TIMEOUT=2s", "DATABASE_URL="}
	k := newSink(t,
		ok(50*time.Millisecond),
		failFirst(1, 503, 0),
	)
	p := startDev(t, dataDir, addrs, env...)
	customer, service := p.waitReady(t)
	s := &prodStack{t: t, api: "http://" + addrs.api, tokens: map[string]string{"demo": customer}, service: service}
	s.hooks("demo", k, 0, 1)
	var events []event
	for i := range 150 {
		events = append(events, event{"demo", fmt.Sprintf("dev-%03d", i)})
	}
	want := pairsOf(events, map[string][]int{"demo": {0, 1}})
	posted := make(chan [2]int, 1)
	go func() {
		u, r := s.post(events, 4) // retries through the restart
		posted <- [2]int{u, r}
	}()
	k.waitCount(len(want)*3/10, time.Minute)
	p.kill9(t)
	kill := time.Now()
	t.Logf("killed dev at %d of %d pairs delivered", len(k.delivered()), len(want))
	p = startDev(t, dataDir, addrs, env...)
	p.waitReady(t)
	t.Logf("dev restarted in %v", time.Since(kill).Round(time.Millisecond))
	down := <-posted
	k.waitAll(want, 3*time.Minute)
	noPanic(t, "dev", p)
	dups, requests := k.checkIDs()
	for pr, first := range dups {
		if first.After(kill) || kill.Sub(first) > 15*time.Second {
			t.Errorf("pair %v delivered twice, but its first success was not in flight at the kill", pr)
		}
	}
	t.Logf("events %d, pairs %d, requests %d, refused/503 while down %d/%d, duplicate successes %d, losses 0", len(events), len(want), requests, down[1], down[0], len(dups))
	p.stop(t)
}

// TestHostileEndpoints runs one organization's events to five endpoints at
// once: a healthy one, one that hangs, a gzip bomb, an endless body, and
// one that is down (connection refused) for the first seconds. The healthy
// endpoint is never delayed, memory stays bounded, stored bodies stay
// within the cap, and the endpoint that comes back gets everything.
func TestHostileEndpoints(t *testing.T) {
	k := newSink(t, ok(0))
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL + "/hook"
	}
	hang := serve(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only once the body is read
		<-r.Context().Done()
	})
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zeros := make([]byte, 1<<20)
	for range 256 { // 256 MiB once inflated; about 256 KiB on the wire
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	gzipBomb := serve(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(bomb.Bytes())
	})
	endless := serve(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	var backMu sync.Mutex
	back := map[string]bool{}
	laterAddr := freeAddr(t)
	later := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&a)
		backMu.Lock()
		back[a.ID] = true
		backMu.Unlock()
	}))
	t.Cleanup(later.Close)

	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "org1")
	s.env = append(s.env, "STREAMHOOKS_ATTEMPT_TIMEOUT=5s") // the hang lasts 5 s per attempt
	s.hooks("org1", k, 0)
	for _, u := range []string{hang, gzipBomb, endless, "http://" + laterAddr + "/hook"} {
		if status, _, b := send("POST", s.api+"/api/v1/org1/webhooks/", s.tokens["org1"], fmt.Sprintf(`{"url": %q, "secret_token": "s"}`, u)); status != 201 {
			t.Fatalf("create webhook: %d %s", status, b)
		}
	}
	worker := s.startWorker()

	const n = 20
	accepted := map[string]time.Time{}
	for i := range n {
		id := fmt.Sprintf("hostile-%02d", i)
		s.post([]event{{"org1", id}}, 1)
		accepted[id] = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	// Bring the refused endpoint up now that every event has failed there.
	ln, err := net.Listen("tcp", laterAddr)
	if err != nil {
		t.Fatal(err)
	}
	later.Listener.Close()
	later.Listener = ln
	later.Start()

	want := map[pair]bool{}
	for id := range accepted {
		want[pair{0, id}] = true
	}
	k.waitAll(want, time.Minute)
	var slowest time.Duration
	k.mu.Lock()
	for _, h := range k.hits {
		slowest = max(slowest, h.start.Sub(accepted[h.asset]))
	}
	k.mu.Unlock()
	if slowest > 2*time.Second {
		t.Errorf("the healthy endpoint waited up to %v for a delivery: the hanging one (5 s per attempt) held it up", slowest)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		backMu.Lock()
		got := len(back)
		backMu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint that came back got %d of %d events", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	db, err := sql.Open("pgx", s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT w.url, a.error_class, a.response_status, max(coalesce(length(a.response_body), 0)), count(*)
		FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN webhooks w ON w.id = d.webhook_id
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]bool{}
	for rows.Next() {
		var u, class string
		var status, longest, count int
		if err := rows.Scan(&u, &class, &status, &longest, &count); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: class %q status %d, %d attempts, longest stored body %d", u, class, status, count, longest)
		if longest > activities.MaxStoredBody {
			t.Errorf("%s: stored a %d-byte body, cap %d", u, longest, activities.MaxStoredBody)
		}
		classes[u+" "+class] = true
	}
	rows.Close()
	for _, w := range []string{hang + " timeout", "http://" + laterAddr + "/hook connection"} {
		if !classes[w] {
			t.Errorf("no attempt recorded as %q", w)
		}
	}
	// A client that inflated the bomb or read the endless body to the end
	// would pass 256 MiB on top of the worker's own ~150-190 MiB.
	if peak := peakRSS(t, worker); peak > 256<<20 {
		t.Errorf("worker peak RSS %d MiB after a 256 MiB gzip bomb and an endless body, want under 256 MiB", peak>>20)
	} else {
		t.Logf("worker peak RSS %d MiB", peak>>20)
	}
	noPanic(t, "worker", worker)
}

// peakRSS reads a running process's high-water resident set size.
func peakRSS(t *testing.T, p *process) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
