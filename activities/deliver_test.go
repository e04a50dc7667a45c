package activities_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

const secret = "whsec-test-secret"

// env is a real store plus activities allowed to reach loopback receivers.
type env struct {
	t     *testing.T
	store *models.Store
	acts  *activities.Activities
	n     int
}

func newEnv(t *testing.T, attemptTimeout time.Duration, allowLoopback bool) *env {
	t.Helper()
	s := modelstest.Postgres(t)
	modelstest.Org(t, s, "org")
	guard := egress.NewGuard(nil)
	if allowLoopback {
		guard = egress.NewGuard(egress.LoopbackCIDRs)
	}
	return &env{t: t, store: s, acts: activities.New(activities.Config{
		Store: s, Guard: guard, AttemptTimeout: attemptTimeout, UserAgent: "streamhooks/test",
	})}
}

// delivery registers a webhook for url, signals an event with payload and
// returns the pending delivery's id.
func (e *env) delivery(url string, payload string) string {
	e.t.Helper()
	ctx := context.Background()
	w, err := e.store.CreateWebhook(ctx, "org", models.WebhookUpdate{URL: &url, SecretToken: ptr(secret)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.n++
	ev := &models.AssetEvent{ID: "ev-" + w.ID, OrganizationID: "org", AssetID: "a1", Payload: []byte(payload), WorkflowID: "wf"}
	if _, _, err := e.store.CreateEvent(ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	ds, err := e.store.CreateDeliveries(ctx, ev.ID, models.WorkflowRun{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range ds {
		if d.WebhookID == w.ID {
			return d.ID
		}
	}
	e.t.Fatalf("no delivery for webhook %s", w.ID)
	return ""
}

func (e *env) attempt(id string, n int, final bool) activities.AttemptResult {
	e.t.Helper()
	res, err := e.acts.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: id, Attempt: n, Final: final, NextDelay: time.Minute})
	if err != nil {
		e.t.Fatalf("attempt %d: %v", n, err)
	}
	return res
}

func (e *env) attempts(id string) []models.DeliveryAttempt {
	e.t.Helper()
	rows, err := e.store.ListAttempts(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

func ptr[T any](v T) *T { return &v }

// recorder is a loopback receiver that records requests and answers with
// the given handler.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	srv  *httptest.Server
}

type recorded struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newRecorder(t *testing.T, answer func(w http.ResponseWriter, n int)) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{header: req.Header.Clone(), body: body, at: time.Now()})
		n := len(r.reqs)
		r.mu.Unlock()
		answer(w, n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// verify checks a Standard Webhooks signature independently of the code
// under test.
func verify(t *testing.T, h http.Header, body []byte) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := h.Get("webhook-signature"); got != want {
		t.Fatalf("webhook-signature: got %q, want %q", got, want)
	}
}

func TestAttemptSendsSignedExactBody(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(200); _, _ = w.Write([]byte("ok")) })
	payload := `{"id":"a1",  "title":"Ünïcode \u00e9", "video":{"status":"Completed"},"z":[1, 2]}`
	id := e.delivery(rec.srv.URL+"/hook?x=1", payload)

	res := e.attempt(id, 1, false)
	if res.Outcome != activities.OutcomeDelivered || res.StatusCode != 200 {
		t.Fatalf("result: got %+v, want delivered 200", res)
	}
	if rec.count() != 1 {
		t.Fatalf("receiver saw %d requests, want 1", rec.count())
	}
	got := rec.reqs[0]
	if string(got.body) != payload {
		t.Fatalf("body: got %q, want the exact bytes %q", got.body, payload)
	}
	wantHeaders := map[string]string{
		"Content-Type": "application/json", "User-Agent": "streamhooks/test", "X-Streams-Token": secret, "Webhook-Id": id,
		"X-Streams-Sequence": "1", // the first event of asset a1
	}
	for k, v := range wantHeaders {
		if got.header.Get(k) != v {
			t.Errorf("header %s: got %q, want %q", k, got.header.Get(k), v)
		}
	}
	ts, err := strconv.ParseInt(got.header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Second {
		t.Fatalf("webhook-timestamp %q: want the current unix time", got.header.Get("webhook-timestamp"))
	}
	verify(t, got.header, got.body)

	rows := e.attempts(id)
	if len(rows) != 1 || rows[0].ResponseStatus != 200 || string(rows[0].ResponseBody) != "ok" || rows[0].ErrorClass != "" {
		t.Fatalf("attempt rows: %+v", rows)
	}
	if strings.Contains(rows[0].RequestHeaders, secret) || !strings.Contains(rows[0].RequestHeaders, "********") {
		t.Fatalf("stored request headers %s: want the secret masked", rows[0].RequestHeaders)
	}
	d, _ := e.store.GetDelivery(context.Background(), id)
	if d.State != models.DeliverySucceeded || d.AttemptCount != 1 || d.LastStatus != 200 {
		t.Fatalf("delivery: %+v, want succeeded after 1 attempt", d)
	}
	// A retried activity for an attempt already recorded sends nothing.
	if res := e.attempt(id, 1, false); res.Outcome != activities.OutcomeDelivered || rec.count() != 1 {
		t.Fatalf("repeat: got %+v with %d requests, want delivered and no new request", res, rec.count())
	}
}

func TestWebhookIDStableAcrossAttempts(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	rec := newRecorder(t, func(w http.ResponseWriter, n int) {
		if n < 3 {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(204)
	})
	id := e.delivery(rec.srv.URL, `{"id":"a1"}`)
	for n, want := range []activities.Outcome{activities.OutcomeRetry, activities.OutcomeRetry, activities.OutcomeDelivered} {
		if res := e.attempt(id, n+1, false); res.Outcome != want {
			t.Fatalf("attempt %d: got %+v, want %s", n+1, res, want)
		}
	}
	for i, r := range rec.reqs {
		if r.header.Get("webhook-id") != id {
			t.Fatalf("request %d webhook-id %q, want %q", i, r.header.Get("webhook-id"), id)
		}
		verify(t, r.header, r.body)
	}
	rows := e.attempts(id)
	if len(rows) != 3 || rows[0].ResponseStatus != 500 || rows[0].ErrorClass != models.ErrorClassHTTP || rows[2].ResponseStatus != 204 {
		t.Fatalf("attempt rows: %+v", rows)
	}
}

func TestAttemptOutcomes(t *testing.T) {
	e := newEnv(t, 500*time.Millisecond, true)
	redirectTarget := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(200) })
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter, n int)
		final      bool
		wantOut    activities.Outcome
		wantStatus int
		wantClass  models.ErrorClass
		wantState  models.DeliveryState
		check      func(t *testing.T, id string, res activities.AttemptResult)
	}{
		{
			name: "3xx is a failed attempt and is not followed",
			answer: func(w http.ResponseWriter, _ int) {
				w.Header().Set("Location", redirectTarget.srv.URL)
				w.WriteHeader(302)
			},
			wantOut: activities.OutcomeRetry, wantStatus: 302, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryPending,
			check: func(t *testing.T, _ string, _ activities.AttemptResult) {
				if redirectTarget.count() != 0 {
					t.Fatalf("redirect target was hit %d times, want 0", redirectTarget.count())
				}
			},
		},
		{
			name:    "slow receiver times out",
			answer:  func(w http.ResponseWriter, _ int) { time.Sleep(2 * time.Second); w.WriteHeader(200) },
			wantOut: activities.OutcomeRetry, wantClass: models.ErrorClassTimeout, wantState: models.DeliveryPending,
			check: func(t *testing.T, _ string, res activities.AttemptResult) {
				if res.DurationMS > 1500 {
					t.Fatalf("attempt took %d ms, want about the 500 ms timeout", res.DurationMS)
				}
			},
		},
		{
			name: "endless body is capped",
			answer: func(w http.ResponseWriter, _ int) {
				w.WriteHeader(500)
				chunk := []byte(strings.Repeat("x", 32<<10))
				for i := 0; i < 1000; i++ { // 32 MB, far past the cap and the timeout
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			wantOut: activities.OutcomeRetry, wantStatus: 500, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryPending,
			check: func(t *testing.T, id string, _ activities.AttemptResult) {
				rows := e.attempts(id)
				if len(rows[0].ResponseBody) != activities.MaxStoredBody {
					t.Fatalf("stored body: %d bytes, want the %d cap", len(rows[0].ResponseBody), activities.MaxStoredBody)
				}
			},
		},
		{
			name:    "410 deactivates the webhook",
			answer:  func(w http.ResponseWriter, _ int) { w.WriteHeader(410) },
			wantOut: activities.OutcomeFailed, wantStatus: 410, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryFailed,
			check: func(t *testing.T, id string, _ activities.AttemptResult) {
				d, _ := e.store.GetDelivery(context.Background(), id)
				w, err := e.store.GetWebhook(context.Background(), "org", d.WebhookID)
				if err != nil || w.IsActive || !strings.Contains(w.DeactivatedReason, "410") {
					t.Fatalf("webhook after 410: %+v, %v; want inactive with a reason", w, err)
				}
			},
		},
		{
			name:    "503 with Retry-After seconds",
			answer:  func(w http.ResponseWriter, _ int) { w.Header().Set("Retry-After", "120"); w.WriteHeader(503) },
			wantOut: activities.OutcomeRetry, wantStatus: 503, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryPending,
			check: func(t *testing.T, id string, res activities.AttemptResult) {
				if res.RetryAfter != 120*time.Second {
					t.Fatalf("RetryAfter: got %v, want 2m", res.RetryAfter)
				}
				d, _ := e.store.GetDelivery(context.Background(), id)
				if d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) < 110*time.Second {
					t.Fatalf("next_attempt_at %v: want about 2 minutes from now", d.NextAttemptAt)
				}
			},
		},
		{
			name: "429 with Retry-After date",
			answer: func(w http.ResponseWriter, _ int) {
				w.Header().Set("Retry-After", time.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat))
				w.WriteHeader(429)
			},
			wantOut: activities.OutcomeRetry, wantStatus: 429, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryPending,
			check: func(t *testing.T, _ string, res activities.AttemptResult) {
				if res.RetryAfter < 9*time.Minute || res.RetryAfter > 10*time.Minute {
					t.Fatalf("RetryAfter: got %v, want about 10m", res.RetryAfter)
				}
			},
		},
		{
			name:    "Retry-After on 500 is ignored",
			answer:  func(w http.ResponseWriter, _ int) { w.Header().Set("Retry-After", "999"); w.WriteHeader(500) },
			wantOut: activities.OutcomeRetry, wantStatus: 500, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryPending,
			check: func(t *testing.T, _ string, res activities.AttemptResult) {
				if res.RetryAfter != 0 {
					t.Fatalf("RetryAfter: got %v, want 0", res.RetryAfter)
				}
			},
		},
		{
			name:    "failure of the final attempt fails the delivery",
			answer:  func(w http.ResponseWriter, _ int) { w.WriteHeader(500) },
			final:   true,
			wantOut: activities.OutcomeFailed, wantStatus: 500, wantClass: models.ErrorClassHTTP, wantState: models.DeliveryFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, tt.answer)
			id := e.delivery(rec.srv.URL, `{"id":"a1"}`)
			res := e.attempt(id, 1, tt.final)
			if res.Outcome != tt.wantOut || res.StatusCode != tt.wantStatus || res.ErrorClass != tt.wantClass {
				t.Fatalf("result: got %+v, want outcome %s status %d class %q", res, tt.wantOut, tt.wantStatus, tt.wantClass)
			}
			d, _ := e.store.GetDelivery(context.Background(), id)
			if d.State != tt.wantState {
				t.Fatalf("delivery state: got %s, want %s", d.State, tt.wantState)
			}
			if rows := e.attempts(id); len(rows) != 1 || rows[0].ErrorClass != tt.wantClass {
				t.Fatalf("attempt rows: %+v", rows)
			}
			if tt.check != nil {
				tt.check(t, id, res)
			}
		})
	}
}

func TestDeletedOrInactiveWebhookCancels(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(200) })
	for _, deactivate := range []func(id string) error{
		func(id string) error { return e.store.DeleteWebhook(context.Background(), "org", id) },
		func(id string) error {
			_, err := e.store.UpdateWebhook(context.Background(), "org", id, models.WebhookUpdate{IsActive: ptr(false)})
			return err
		},
	} {
		id := e.delivery(rec.srv.URL, `{"id":"a1"}`)
		d, _ := e.store.GetDelivery(context.Background(), id)
		if err := deactivate(d.WebhookID); err != nil {
			t.Fatal(err)
		}
		if res := e.attempt(id, 2, false); res.Outcome != activities.OutcomeCancelled {
			t.Fatalf("result: got %+v, want cancelled", res)
		}
		if d, _ := e.store.GetDelivery(context.Background(), id); d.State != models.DeliveryCancelled {
			t.Fatalf("state: got %s, want cancelled", d.State)
		}
	}
	if rec.count() != 0 {
		t.Fatalf("receiver saw %d requests, want none", rec.count())
	}
}

// TestConnectionErrors covers the error classes that involve no HTTP answer.
func TestConnectionErrors(t *testing.T) {
	e := newEnv(t, 2*time.Second, true)
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	tests := []struct {
		name, url string
		class     models.ErrorClass
	}{
		{"connection refused", url, models.ErrorClassConnection},
		{"unknown host", "http://no-such-host.invalid/", models.ErrorClassDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.delivery(tt.url, `{"id":"a1"}`)
			if res := e.attempt(id, 1, false); res.ErrorClass != tt.class || res.Outcome != activities.OutcomeRetry {
				t.Fatalf("result: got %+v, want class %s", res, tt.class)
			}
			rows := e.attempts(id)
			if len(rows) != 1 || rows[0].ErrorMessage == "" || strings.Contains(rows[0].ErrorMessage, secret) {
				t.Fatalf("attempt row: %+v, want a message without the secret", rows)
			}
		})
	}
}

// counter is a loopback listener that counts accepted connections: the
// proof that a blocked attempt never connected.
type counter struct {
	accepted atomic.Int64
	srv      *httptest.Server
}

func TestSSRFBlockedAtDial(t *testing.T) {
	e := newEnv(t, 2*time.Second, false) // no allow-list: loopback is refused too
	c := &counter{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.accepted.Add(1)
		}
	}
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	port := c.srv.URL[strings.LastIndex(c.srv.URL, ":")+1:]
	targets := []string{
		"http://127.0.0.1:" + port,
		"http://127.0.0.2:" + port,
		"http://127.1:" + port,
		"http://0x7f000001:" + port,
		"http://0x7f.0.0.1:" + port,
		"http://2130706433:" + port,
		"http://0177.0.0.1:" + port,
		"http://017700000001:" + port,
		"http://[::1]:" + port,
		"http://[::ffff:127.0.0.1]:" + port,
		"http://[::ffff:7f00:1]:" + port,
		"http://[0:0:0:0:0:ffff:127.0.0.1]:" + port,
		"http://localhost:" + port,
		"http://LOCALHOST:" + port,
		"http://0.0.0.0:" + port,
		"http://0:" + port,
		"http://[::]:" + port,
		"http://10.0.0.1/",
		"http://10.255.255.255/",
		"http://172.16.0.1/",
		"http://172.31.255.254/",
		"http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://169.254.170.2/v2/credentials",
		"http://[fe80::1]/",
		"http://[fc00::1]/",
		"http://[fd00:ec2::254]/",
		"http://100.64.0.1/",
		"http://100.127.255.254/",
		"http://224.0.0.1/",
		"http://255.255.255.255/",
		"http://[ff02::1]/",
		"http://[64:ff9b::7f00:1]:" + port,
		"http://[64:ff9b::a9fe:a9fe]/",
		"http://[2002:7f00:1::]:" + port,
		"http://[2002:a9fe:a9fe::]/",
		"http://[::127.0.0.1]:" + port,
		"http://198.18.0.1/",
		"http://240.0.0.1/",
		"http://192.0.0.8/",
		"http://[2001:db8::1]/",
		"http://[::ffff:169.254.169.254]/",
		"http://[::ffff:10.0.0.1]/",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			id := e.delivery(target, `{"id":"a1"}`)
			res := e.attempt(id, 1, false)
			if res.ErrorClass != models.ErrorClassBlocked {
				t.Fatalf("result: got %+v, want error class blocked", res)
			}
			rows := e.attempts(id)
			if len(rows) != 1 || !strings.HasPrefix(rows[0].ErrorMessage, "Blocked: ") {
				t.Fatalf("attempt row: %+v, want a customer-safe Blocked message", rows)
			}
		})
	}
	if n := c.accepted.Load(); n != 0 {
		t.Fatalf("the loopback listener accepted %d connections, want 0", n)
	}
}

// TestOwnerFence: an attempt by a workflow that no longer owns the
// delivery sends nothing and reports it released; the owner's attempt is
// sent.
func TestOwnerFence(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(200) })
	ctx := context.Background()
	url := rec.srv.URL
	if _, err := e.store.CreateWebhook(ctx, "org", models.WebhookUpdate{URL: &url, SecretToken: ptr(secret)}); err != nil {
		t.Fatal(err)
	}
	ev := &models.AssetEvent{ID: "ev-fence", OrganizationID: "org", AssetID: "a1", Payload: []byte(`{"id":"a1"}`), WorkflowID: "asset-event:ev-fence"}
	if _, _, err := e.store.CreateEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	ds, err := e.store.CreateDeliveries(ctx, ev.ID, models.WorkflowRun{WorkflowID: "asset-event:ev-fence"})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	tests := []struct {
		name     string
		owner    string
		want     activities.Outcome
		requests int
	}{
		{"another workflow", "redeliver:x:2", activities.OutcomeReleased, 0},
		{"the owner", "asset-event:ev-fence", activities.OutcomeDelivered, 1},
	}
	for _, tt := range tests {
		res, err := e.acts.AttemptDelivery(ctx, activities.AttemptInput{DeliveryID: ds[0].ID, Attempt: 1, Owner: tt.owner})
		if err != nil || res.Outcome != tt.want || rec.count() != tt.requests {
			t.Fatalf("%s: got %+v, %v with %d requests; want %s with %d", tt.name, res, err, rec.count(), tt.want, tt.requests)
		}
	}
}

// TestPrepareLargeFanout: above the inline limit the snapshot returns only
// the total, and LoadBatch pages cover every delivery exactly once; a
// delivery with attempts made is described so a new run resumes it.
func TestPrepareLargeFanout(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	ctx := context.Background()
	const hooks = 1234 // more rows than one INSERT batch
	for i := range hooks {
		url := fmt.Sprintf("https://example.com/hook/%d", i)
		if _, err := e.store.CreateWebhook(ctx, "org", models.WebhookUpdate{URL: &url, SecretToken: ptr(secret)}); err != nil {
			t.Fatal(err)
		}
	}
	ev := &models.AssetEvent{ID: "ev-wide", OrganizationID: "org", AssetID: "a1", Payload: []byte(`{"id":"a1"}`), WorkflowID: "asset-event:ev-wide"}
	if _, _, err := e.store.CreateEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		prep, err := e.acts.PrepareDeliveries(ctx, activities.PrepareInput{EventID: ev.ID, Inline: 100})
		if err != nil || prep.Total != hooks || len(prep.Deliveries) != 0 {
			t.Fatalf("prepare: total %d, %d listed, %v; want %d and none listed", prep.Total, len(prep.Deliveries), err, hooks)
		}
	}
	seen := map[string]int{}
	for off := 0; off < hooks; off += 100 {
		refs, err := e.acts.LoadBatch(ctx, activities.BatchInput{EventID: ev.ID, Offset: off, Limit: 100})
		if err != nil || len(refs) != min(100, hooks-off) {
			t.Fatalf("page at %d: %d refs, %v", off, len(refs), err)
		}
		for _, r := range refs {
			seen[r.ID]++
			if r.Host != "example.com" || r.FirstAttempt != 0 || r.State != models.DeliveryPending {
				t.Fatalf("ref %+v: want host example.com, a fresh pending delivery", r)
			}
		}
	}
	if len(seen) != hooks {
		t.Fatalf("pages covered %d deliveries, want %d", len(seen), hooks)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s in %d pages, want 1", id, n)
		}
	}
}
