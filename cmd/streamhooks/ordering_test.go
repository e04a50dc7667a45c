package main_test

// Ordering and freshness per (webhook, asset) (issue 14, DESIGN §9),
// end to end: real receivers on loopback check what a receiver can see,
// every request's x-streams-sequence, and that two requests of one
// (webhook, asset) are never open at once.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models/modelstest"
)

// seqHit is one request an ordering endpoint saw.
type seqHit struct {
	seq    int64
	status int
	at     time.Time
}

// orderSink is a set of endpoints that record, per asset, the sequence of
// every request and its answer, and fail the test on two requests of one
// asset open at once.
type orderSink struct {
	t       *testing.T
	mu      sync.Mutex
	hits    []map[string][]seqHit // endpoint → asset → requests in arrival order
	open    []map[string]int
	perID   map[string]int
	urls    []string
	secrets []string
}

// orderBehaviour answers one request: asset, its sequence and how many
// requests its webhook-id made so far (1 for the first).
type orderBehaviour func(asset string, seq int64, n int) (status int, hold time.Duration)

func newOrderSink(t *testing.T, behaviours ...orderBehaviour) *orderSink {
	s := &orderSink{t: t, perID: map[string]int{}}
	for i, b := range behaviours {
		secret := fmt.Sprintf("order-secret-%d", i)
		s.hits = append(s.hits, map[string][]seqHit{})
		s.open = append(s.open, map[string]int{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if !validSignature(secret, r.Header, body) {
				t.Errorf("endpoint %d: bad signature on %s", i, r.Header.Get("webhook-id"))
			}
			var asset struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(body, &asset)
			seq, err := strconv.ParseInt(r.Header.Get("x-streams-sequence"), 10, 64)
			if err != nil || seq < 1 {
				t.Errorf("endpoint %d: x-streams-sequence %q", i, r.Header.Get("x-streams-sequence"))
			}
			s.mu.Lock()
			s.open[i][asset.ID]++
			if s.open[i][asset.ID] > 1 {
				t.Errorf("endpoint %d, asset %s: two requests in flight at once (sequence %d arrived)", i, asset.ID, seq)
			}
			s.perID[r.Header.Get("webhook-id")]++
			n := s.perID[r.Header.Get("webhook-id")]
			s.mu.Unlock()
			// The arrival time: an answer to a request that arrived before
			// a kill may be lost with the killed sender, even if the hold
			// ends after it.
			arrived := time.Now()
			status, hold := b(asset.ID, seq, n)
			if hold > 0 {
				select {
				case <-time.After(hold):
				case <-r.Context().Done():
				}
			}
			s.mu.Lock()
			s.open[i][asset.ID]--
			s.hits[i][asset.ID] = append(s.hits[i][asset.ID], seqHit{seq: seq, status: status, at: arrived})
			s.mu.Unlock()
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		s.urls = append(s.urls, srv.URL+"/hook")
		s.secrets = append(s.secrets, secret)
	}
	return s
}

// succeeded lists, per asset, the sequences endpoint i answered 2xx, in
// order.
func (s *orderSink) succeeded(i int) map[string][]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]int64{}
	for asset, hs := range s.hits[i] {
		for _, h := range hs {
			if h.status < 300 {
				out[asset] = append(out[asset], h.seq)
			}
		}
	}
	return out
}

// firstHit is the first request endpoint i answered for asset (zero if
// none yet).
func (s *orderSink) firstHit(i int, asset string) seqHit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hs := s.hits[i][asset]; len(hs) > 0 {
		return hs[0]
	}
	return seqHit{}
}

// waitNewest waits until endpoint i answered 2xx to sequence newest of
// every asset.
func (s *orderSink) waitNewest(i int, assets []string, newest int64, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.succeeded(i)
		missing := 0
		for _, a := range assets {
			if seqs := got[a]; len(seqs) == 0 || seqs[len(seqs)-1] != newest {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("endpoint %d: %d of %d assets have not received sequence %d last", i, missing, len(assets), newest)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOrder checks what endpoint i saw of each asset: never a sequence
// below one it saw before, 2xx answers strictly increasing, the newest
// last; with all, every sequence 1..newest answered 2xx, in order.
//
// The same sequence twice is a repeated delivery (same webhook-id), allowed
// only when its first 2xx was in flight at one of kills.
func (s *orderSink) checkOrder(i int, assets []string, newest int64, all bool, kills ...time.Time) (superseded int) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range assets {
		hs := s.hits[i][a]
		var last, lastOK int64
		var lastOKAt time.Time
		var oks []int64
		for _, h := range hs {
			if h.seq < last {
				s.t.Errorf("endpoint %d, asset %s: sequence %d arrived after %d (went back in time): %v", i, a, h.seq, last, hs)
			}
			last = max(last, h.seq)
			if h.status < 300 {
				if h.seq == lastOK && inFlightAt(lastOKAt, kills) {
					continue // the answer was lost with the killed process
				}
				if h.seq <= lastOK {
					s.t.Errorf("endpoint %d, asset %s: 2xx for %d after 2xx for %d", i, a, h.seq, lastOK)
				}
				lastOK, lastOKAt = h.seq, h.at
				oks = append(oks, h.seq)
			}
		}
		if lastOK != newest {
			s.t.Errorf("endpoint %d, asset %s: last success %d, want the newest %d", i, a, lastOK, newest)
		}
		if all && len(oks) != int(newest) {
			s.t.Errorf("endpoint %d (delivery_mode all), asset %s: successes %v, want 1..%d", i, a, oks, newest)
		}
		superseded += int(newest) - len(oks)
	}
	return superseded
}

// inFlightAt reports whether an answer at t may have been lost with a
// process killed at one of kills: just before it.
func inFlightAt(t time.Time, kills []time.Time) bool {
	for _, k := range kills {
		if !t.After(k) && k.Sub(t) < 15*time.Second {
			return true
		}
	}
	return false
}

// hookWithMode registers endpoint i of k as a webhook of org in mode.
func (s *prodStack) hookWithMode(org string, k *orderSink, i int, mode string) string {
	s.t.Helper()
	body := fmt.Sprintf(`{"url": %q, "secret_token": %q, "delivery_mode": %q}`, k.urls[i], k.secrets[i], mode)
	status, _, b := send("POST", s.api+"/api/v1/"+org+"/webhooks/", s.tokens[org], body)
	var w struct {
		ID   string `json:"id"`
		Mode string `json:"delivery_mode"`
	}
	if status != 201 || json.Unmarshal(b, &w) != nil || w.Mode != mode {
		s.t.Fatalf("create webhook in mode %s: %d %s", mode, status, b)
	}
	return w.ID
}

// signal accepts one status of asset and returns its sequence.
func (s *prodStack) signal(org, asset, status string) int64 {
	s.t.Helper()
	body := fmt.Sprintf(`{"organization_id": %q, "asset": {"id": %q, "video": {"status": %q}}}`, org, asset, status)
	for range 600 {
		code, _, b := send("POST", s.api+"/internal/v1/asset-events/", s.service, body)
		if code == 202 {
			var r struct {
				Sequence int64 `json:"sequence"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Sequence < 1 {
				s.t.Fatalf("202 without a sequence: %s", b)
			}
			return r.Sequence
		}
		if code != 0 && code != 503 {
			s.t.Fatalf("signal %s %s: %d %s", asset, status, code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("signal %s %s: not accepted in a minute", asset, status)
	return 0
}

// deliveriesOf lists the deliveries of webhook id: state by sequence, for
// asset.
func (s *prodStack) deliveriesOf(org, hook, asset string) map[int64]string {
	s.t.Helper()
	status, _, b := send("GET", s.api+"/api/v1/"+org+"/webhooks/"+hook+"/deliveries/?asset_id="+asset+"&limit=100", s.tokens[org], "")
	var page struct {
		Results []struct {
			Sequence int64  `json:"sequence"`
			State    string `json:"state"`
		} `json:"results"`
	}
	if status != 200 || json.Unmarshal(b, &page) != nil {
		s.t.Fatalf("list deliveries: %d %s", status, b)
	}
	out := map[int64]string{}
	for _, r := range page.Results {
		out[r.Sequence] = r.State
	}
	return out
}

var fourStatuses = []string{"Queued", "Transcoding", "Transcoding", "Completed"}

// TestOrderingFirstEventFails: the receiver fails the first event of an
// asset three times while three newer states arrive. In delivery_mode
// latest it sees only increasing sequences, the newest last, and the
// older deliveries end superseded; in delivery_mode all it gets all four,
// in order. Meanwhile another asset, and another webhook, are not held
// up; and a stale redelivery answers 409 unless forced.
func TestOrderingFirstEventFails(t *testing.T) {
	const n = 3
	failFirstEvent := func(asset string, seq int64, seen int) (int, time.Duration) {
		if asset == "vid-a" && seq == 1 && seen <= n {
			return 503, 300 * time.Millisecond
		}
		return 200, 0
	}
	k := newOrderSink(t, failFirstEvent, failFirstEvent, func(string, int64, int) (int, time.Duration) { return 200, 0 })
	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "org")
	latest := s.hookWithMode("org", k, 0, "latest")
	all := s.hookWithMode("org", k, 1, "all")
	s.hookWithMode("org", k, 2, "latest")
	s.startWorker()

	signalled := time.Now()
	if seq := s.signal("org", "vid-a", fourStatuses[0]); seq != 1 {
		t.Fatalf("first event: sequence %d, want 1", seq)
	}
	// The newer states arrive while the first is failing.
	deadline := time.Now().Add(30 * time.Second)
	for k.firstHit(0, "vid-a").seq == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for i, st := range fourStatuses[1:] {
		if seq := s.signal("org", "vid-a", st); seq != int64(i+2) {
			t.Fatalf("event %d: sequence %d", i+2, seq)
		}
	}
	// Another asset of the same webhooks goes at once, whatever vid-a does.
	began := time.Now()
	s.signal("org", "vid-b", "Completed")
	k.waitNewest(0, []string{"vid-b"}, 1, 20*time.Second)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("vid-b took %v behind the failing vid-a", d)
	}

	k.waitNewest(0, []string{"vid-a"}, 4, time.Minute)
	k.waitNewest(1, []string{"vid-a"}, 4, time.Minute)
	k.waitNewest(2, []string{"vid-a"}, 4, time.Minute)
	k.checkOrder(0, []string{"vid-a"}, 4, false)
	k.checkOrder(0, []string{"vid-b"}, 1, false)
	k.checkOrder(1, []string{"vid-a"}, 4, true)
	k.checkOrder(2, []string{"vid-a"}, 4, false)
	// The healthy webhook got vid-a's first state while the others failed it.
	if first := k.firstHit(2, "vid-a"); first.seq != 1 || first.at.Sub(signalled) > 3*time.Second {
		t.Errorf("healthy webhook: first request %+v, %v after the signal; want sequence 1 at once", first, first.at.Sub(signalled))
	}
	if got := k.succeeded(0)["vid-a"]; len(got) >= 4 {
		t.Errorf("latest: successes %v, want the older states superseded", got)
	}
	t.Logf("latest got 2xx for %v, all for %v", k.succeeded(0)["vid-a"], k.succeeded(1)["vid-a"])

	// The deliveries API says what happened; the superseded ones end so
	// within moments of the newest success.
	var states map[int64]string
	for range 100 {
		states = s.deliveriesOf("org", latest, "vid-a")
		if states[1] == "superseded" && states[4] == "succeeded" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if states[1] != "superseded" || states[4] != "succeeded" {
		t.Fatalf("latest deliveries by sequence %v, want 1 superseded and 4 succeeded", states)
	}
	for seq, st := range states {
		if st != "superseded" && st != "succeeded" {
			t.Errorf("latest: delivery of sequence %d is %s", seq, st)
		}
	}
	if st := s.deliveriesOf("org", all, "vid-a"); len(st) != 4 || st[1] != "succeeded" || st[4] != "succeeded" {
		t.Errorf("all deliveries by sequence %v, want four succeeded", st)
	}
	status, _, b := send("GET", s.api+"/api/v1/org/webhooks/"+latest+"/deliveries/?status=superseded", s.tokens["org"], "")
	var page struct {
		Count   int `json:"count"`
		Results []struct {
			ID       string `json:"id"`
			Sequence int64  `json:"sequence"`
		} `json:"results"`
	}
	if status != 200 || json.Unmarshal(b, &page) != nil || page.Count == 0 {
		t.Fatalf("?status=superseded: %d %s", status, b)
	}
	// A stale redelivery would send the receiver back in time.
	stale := page.Results[0].ID
	status, _, b = send("POST", s.api+"/api/v1/org/deliveries/"+stale+"/redeliver/", s.tokens["org"], "")
	if want := `{"detail":"A newer event of this asset was already sent to this webhook."}`; status != 409 || string(b) != want {
		t.Fatalf("stale redelivery: %d %s, want 409 %s", status, b, want)
	}
	status, _, b = send("POST", s.api+"/api/v1/org/deliveries/"+stale+"/redeliver/", s.tokens["org"], `{"force": true}`)
	if status != 202 {
		t.Fatalf("forced redelivery: %d %s", status, b)
	}
	forced := page.Results[0].Sequence
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := k.succeeded(0)["vid-a"]
		if len(got) > 0 && got[len(got)-1] == forced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forced redelivery of sequence %d never arrived: %v", forced, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// orderingLoad is the stress of issue 14: 50 assets × 4 statuses,
// interleaved, on 3 webhooks (latest, all, and latest with failures of
// its own), with random failures and delays everywhere.
type orderingLoad struct {
	assets []string
	sink   *orderSink
}

func newOrderingLoad(t *testing.T) *orderingLoad {
	l := &orderingLoad{}
	for i := range 50 {
		l.assets = append(l.assets, fmt.Sprintf("vid-%02d", i))
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(14, 14))
	random := func(failPct int) orderBehaviour {
		return func(asset string, seq int64, seen int) (int, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			hold := time.Duration(rng.IntN(40)) * time.Millisecond
			if seen <= 3 && rng.IntN(100) < failPct {
				return 500, hold
			}
			return 200, hold
		}
	}
	l.sink = newOrderSink(t, random(15), random(15), random(60))
	return l
}

// post signals round r of every asset in a shuffled order, with 8
// clients.
func (l *orderingLoad) post(s *prodStack, org string) {
	var events []struct{ asset, status string }
	for _, st := range fourStatuses {
		round := make([]string, len(l.assets))
		copy(round, l.assets)
		rand.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, a := range round {
			events = append(events, struct{ asset, status string }{a, st})
		}
	}
	ch := make(chan struct{ asset, status string })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ch {
				s.signal(org, e.asset, e.status)
			}
		}()
	}
	for _, e := range events {
		ch <- e
	}
	close(ch)
	wg.Wait()
}

func (l *orderingLoad) check(t *testing.T, kills ...time.Time) {
	for i := range 3 {
		l.sink.waitNewest(i, l.assets, 4, 2*time.Minute)
	}
	sup := l.sink.checkOrder(0, l.assets, 4, false, kills...)
	l.sink.checkOrder(1, l.assets, 4, true, kills...)
	sup2 := l.sink.checkOrder(2, l.assets, 4, false, kills...)
	t.Logf("200 events on 3 webhooks: latest superseded %d and %d (failing webhook), all delivered every state in order", sup, sup2)
}

// TestOrderingUnderWorkerKill9: the load with the worker killed -9 twice.
func TestOrderingUnderWorkerKill9(t *testing.T) {
	l := newOrderingLoad(t)
	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "org")
	s.hookWithMode("org", l.sink, 0, "latest")
	s.hookWithMode("org", l.sink, 1, "all")
	s.hookWithMode("org", l.sink, 2, "latest")
	worker := s.startWorker()
	defer func() {
		if t.Failed() {
			dumpOrdering(t, s.dbURL)
			_, errOut := worker.output()
			if len(errOut) > 20000 {
				errOut = errOut[len(errOut)-20000:]
			}
			t.Logf("worker stderr tail:\n%s", errOut)
		}
	}()
	posted := make(chan struct{})
	go func() { defer close(posted); l.post(s, "org") }()
	var kills []time.Time
	for _, after := range []int{60, 140} { // of the 200 the all-mode webhook gets
		l.sink.waitSuccesses(1, after, 2*time.Minute)
		worker.kill9(t)
		kills = append(kills, time.Now())
		t.Logf("worker killed at %d successes of the all-mode webhook", after)
		worker = s.startWorker()
	}
	<-posted
	l.check(t, kills...)
	noPanic(t, "worker", worker)
}

// TestOrderingAcrossDevRestart: the load on `streamhooks dev`, killed -9
// and started again halfway.
func TestOrderingAcrossDevRestart(t *testing.T) {
	l := newOrderingLoad(t)
	dataDir := t.TempDir()
	addrs := devAddrs{api: freeAddr(t), temporal: freeAddr(t), ui: freeAddr(t)}
	env := []string{"STREAMHOOKS_RETRY_SCHEDULE=500ms,1s,1s,2s,2s,4s,4s,4s", "STREAMHOOKS_ATTEMPT_TIMEOUT=2s", "DATABASE_URL="}
	p := startDev(t, dataDir, addrs, env...)
	customer, service := p.waitReady(t)
	s := &prodStack{t: t, api: "http://" + addrs.api, tokens: map[string]string{"demo": customer}, service: service}
	s.hookWithMode("demo", l.sink, 0, "latest")
	s.hookWithMode("demo", l.sink, 1, "all")
	s.hookWithMode("demo", l.sink, 2, "latest")
	posted := make(chan struct{})
	go func() { defer close(posted); l.post(s, "demo") }()
	l.sink.waitSuccesses(1, 100, 2*time.Minute)
	p.kill9(t)
	kill := time.Now()
	t.Logf("dev killed at %d successes of the all-mode webhook", sum(l.sink.succeeded(1)))
	p = startDev(t, dataDir, addrs, env...)
	p.waitReady(t)
	<-posted
	l.check(t, kill)
	noPanic(t, "dev", p)
	p.stop(t)
}

// waitSuccesses waits until endpoint i answered n requests 2xx.
func (s *orderSink) waitSuccesses(i, n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for sum(s.succeeded(i)) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("endpoint %d: %d successes after %v, want %d", i, sum(s.succeeded(i)), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpOrdering logs the deliveries that have not ended and the turns, for
// a failure.
func dumpOrdering(t *testing.T, dbURL string) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Log(err)
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT w.delivery_mode, e.asset_id, e.sequence, d.id, d.state, d.attempt_count, coalesce(d.next_attempt_at::text, ''), e.prepared_at IS NOT NULL, d.workflow_id
		FROM deliveries d JOIN asset_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.state = 'pending' ORDER BY w.delivery_mode, e.asset_id, e.sequence LIMIT 60`)
	if err != nil {
		t.Log(err)
		return
	}
	for rows.Next() {
		var mode, asset, id, state, next, wf string
		var seq, n int64
		var prepared bool
		_ = rows.Scan(&mode, &asset, &seq, &id, &state, &n, &next, &prepared, &wf)
		t.Logf("pending: %s %s seq %d %s attempts %d next %s prepared %v wf %s", mode, asset, seq, id, n, next, prepared, wf)
	}
	rows.Close()
	rows, err = db.Query(`SELECT t.webhook_id, t.asset_id, t.sent_sequence, t.holder, coalesce(t.lease_until::text, '') FROM delivery_turns t WHERE t.holder <> '' LIMIT 30`)
	if err != nil {
		t.Log(err)
		return
	}
	for rows.Next() {
		var hook, asset, holder, until string
		var sent int64
		_ = rows.Scan(&hook, &asset, &sent, &holder, &until)
		t.Logf("held turn: %s %s sent %d holder %s until %s", hook, asset, sent, holder, until)
	}
	rows.Close()
	var unprepared int
	_ = db.QueryRow(`SELECT count(*) FROM asset_events WHERE prepared_at IS NULL`).Scan(&unprepared)
	t.Logf("unprepared events: %d", unprepared)
}

func sum(m map[string][]int64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
