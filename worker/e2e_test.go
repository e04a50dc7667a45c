package worker_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
	"github.com/streamhooks/streamhooks/worker"
	"github.com/streamhooks/streamhooks/workflows"
)

var update = flag.Bool("update", false, "rewrite workflows/testdata/deliver_event.json from a real run")

// receiver is a loopback webhook endpoint that records every request,
// verifies its signature against its secret and answers from a script.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	seen   []http.Header
	bodies [][]byte
	srv    *httptest.Server
}

func newReceiver(t *testing.T, secret string, answer func(n int) int) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(req.Header.Get("webhook-id") + "." + req.Header.Get("webhook-timestamp") + "." + string(body)))
		if req.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) ||
			req.Header.Get("x-streams-token") != secret {
			t.Errorf("receiver %s: bad signature or token", secret)
		}
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Clone())
		r.bodies = append(r.bodies, body)
		n := len(r.seen)
		r.mu.Unlock()
		w.WriteHeader(answer(n))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.seen...)
}

// stack is the whole system on loopback: PostgreSQL, an in-process Temporal
// server, the worker and the API.
type stack struct {
	t      *testing.T
	store  *models.Store
	client client.Client
	api    *httptest.Server
	token  string
	svc    string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	store := modelstest.Postgres(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	acts := activities.New(activities.Config{
		Store: store, Guard: activities.NewGuard(activities.LoopbackCIDRs), UserAgent: "streamhooks/e2e",
		Schedule: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}, AttemptTimeout: 3 * time.Second,
	})
	w := worker.New(c, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	srv := httptest.NewServer(api.New(api.Config{Store: store, Events: &workflows.Starter{Client: c}}))
	t.Cleanup(srv.Close)
	return &stack{t: t, store: store, client: c, api: srv, token: modelstest.Org(t, store, "demo"), svc: modelstest.ServiceToken(t, store)}
}

func (s *stack) call(method, path, token, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.api.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (s *stack) createWebhook(url, secret string) string {
	s.t.Helper()
	status, m := s.call("POST", "/api/v1/demo/webhooks/", s.token, `{"url": "`+url+`", "secret_token": "`+secret+`"}`)
	if status != 201 {
		s.t.Fatalf("create webhook: %d %v", status, m)
	}
	return m["id"].(string)
}

func (s *stack) wait(workflowID string) workflows.DeliverEventResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.DeliverEventResult
	if err := s.client.GetWorkflow(ctx, workflowID, "").Get(ctx, &res); err != nil {
		s.t.Fatalf("workflow %s: %v", workflowID, err)
	}
	return res
}

func TestEndToEnd(t *testing.T) {
	s := newStack(t)
	healthy := newReceiver(t, "secret-healthy", func(int) int { return 200 })
	flaky := newReceiver(t, "secret-flaky", func(n int) int {
		if n <= 2 {
			return 500
		}
		return 200
	})
	gone := newReceiver(t, "secret-gone", func(int) int { return 410 })
	hooks := map[string]*receiver{}
	for _, r := range []*receiver{healthy, flaky, gone} {
		hooks[s.createWebhook(r.srv.URL+"/hook", r.secret)] = r
	}
	asset := `{"id": "vid_1", "title": "Launch  video", "type": "video", "video": {"status": "Completed", "duration": 12.5}}`
	event := `{"organization_id": "demo", "event_id": "evt-1", "asset": ` + asset + `}`

	t.Run("delivers to every webhook with retries and 410 handling", func(t *testing.T) {
		status, m := s.call("POST", "/internal/v1/asset-events/", s.svc, event)
		if status != 202 || m["event_id"] != "evt-1" || m["workflow_id"] != workflows.WorkflowID("evt-1") {
			t.Fatalf("signal: got %d %v", status, m)
		}
		// The same event_id again starts nothing new and answers the same.
		status2, m2 := s.call("POST", "/internal/v1/asset-events/", s.svc, event)
		if status2 != 202 || m2["event_id"] != m["event_id"] || m2["workflow_id"] != m["workflow_id"] {
			t.Fatalf("repeat: got %d %v, want %v", status2, m2, m)
		}
		res := s.wait(m["workflow_id"].(string))
		if res != (workflows.DeliverEventResult{Succeeded: 2, Failed: 1}) {
			t.Fatalf("workflow result %+v, want 2 succeeded and 1 failed (410)", res)
		}
		wantRequests := map[*receiver]int{healthy: 1, flaky: 3, gone: 1}
		ds, err := s.store.ListEventDeliveries(context.Background(), "evt-1")
		if err != nil || len(ds) != 3 {
			t.Fatalf("deliveries: %d, %v", len(ds), err)
		}
		for _, d := range ds {
			r := hooks[d.WebhookID]
			reqs := r.requests()
			if len(reqs) != wantRequests[r] {
				t.Fatalf("%s received %d requests, want %d", r.secret, len(reqs), wantRequests[r])
			}
			rows, _ := s.store.ListAttempts(context.Background(), d.ID)
			if len(rows) != len(reqs) {
				t.Fatalf("%s: %d attempt rows for %d requests", r.secret, len(rows), len(reqs))
			}
			for i, h := range reqs {
				if h.Get("webhook-id") != d.ID {
					t.Fatalf("%s request %d webhook-id %q, want delivery id %q", r.secret, i, h.Get("webhook-id"), d.ID)
				}
				if !bytes.Equal(r.bodies[i], []byte(asset)) {
					t.Fatalf("%s body %q, want the asset bytes as sent", r.secret, r.bodies[i])
				}
				if rows[i].AttemptNumber != i+1 {
					t.Fatalf("%s row %d is attempt %d", r.secret, i, rows[i].AttemptNumber)
				}
			}
		}
		if _, m := s.call("GET", "/api/v1/demo/webhooks/", s.token, ""); m["count"] != float64(3) {
			t.Fatalf("list: %v", m)
		}
		for id, r := range hooks {
			_, w := s.call("GET", "/api/v1/demo/webhooks/"+id+"/", s.token, "")
			if want := r != gone; w["is_active"] != want {
				t.Fatalf("%s is_active %v, want %v", r.secret, w["is_active"], want)
			}
		}
		history := s.history(m["workflow_id"].(string))
		for _, r := range []*receiver{healthy, flaky, gone} {
			if strings.Contains(history, r.secret) {
				t.Fatalf("workflow history contains the secret %q", r.secret)
			}
		}
		if *update {
			if err := os.WriteFile("../workflows/testdata/deliver_event.json", []byte(history), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("signalling rules", func(t *testing.T) {
		tests := []struct {
			name, token, body string
			status            int
		}{
			{"customer token is forbidden", s.token, event, 403},
			{"unknown organization", s.svc, `{"organization_id": "ghost", "asset": {"id": "x"}}`, 404},
			{"asset not an object", s.svc, `{"organization_id": "demo", "asset": [1]}`, 400},
			{"asset without id", s.svc, `{"organization_id": "demo", "asset": {"title": "x"}}`, 400},
			{"asset id not a string", s.svc, `{"organization_id": "demo", "asset": {"id": 5}}`, 400},
			{"missing asset", s.svc, `{"organization_id": "demo"}`, 400},
			{"event_id reused by another org", s.svc, `{"organization_id": "other", "event_id": "evt-1", "asset": {"id": "x"}}`, 409},
			{"oversized", s.svc, `{"organization_id": "demo", "asset": {"id": "x", "pad": "` + strings.Repeat("a", 1<<20) + `"}}`, 413},
		}
		if _, err := s.store.CreateOrganization(context.Background(), "other", ""); err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if status, m := s.call("POST", "/internal/v1/asset-events/", tt.token, tt.body); status != tt.status {
					t.Fatalf("got %d %v, want %d", status, m, tt.status)
				}
			})
		}
	})

	t.Run("deleting a webhook mid-retry cancels its delivery", func(t *testing.T) {
		failing := newReceiver(t, "secret-failing", func(int) int { return 503 })
		id := s.createWebhook(failing.srv.URL, failing.secret)
		for hid := range hooks { // only the failing webhook stays active
			s.call("PATCH", "/api/v1/demo/webhooks/"+hid+"/", s.token, `{"is_active": false}`)
		}
		_, m := s.call("POST", "/internal/v1/asset-events/", s.svc, `{"organization_id": "demo", "event_id": "evt-del", "asset": {"id": "vid_2"}}`)
		deadline := time.Now().Add(20 * time.Second)
		for len(failing.requests()) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if status, _ := s.call("DELETE", "/api/v1/demo/webhooks/"+id+"/", s.token, ""); status != 204 {
			t.Fatalf("delete: %d", status)
		}
		res := s.wait(m["workflow_id"].(string))
		if res != (workflows.DeliverEventResult{Cancelled: 1}) {
			t.Fatalf("result %+v, want 1 cancelled", res)
		}
		ds, _ := s.store.ListEventDeliveries(context.Background(), "evt-del")
		if len(ds) != 1 || ds[0].State != models.DeliveryCancelled {
			t.Fatalf("deliveries %+v, want one cancelled", ds)
		}
	})

	t.Run("relay starts an event whose start was lost", func(t *testing.T) {
		late := newReceiver(t, "secret-late", func(int) int { return 200 })
		s.createWebhook(late.srv.URL, late.secret)
		ev := &models.AssetEvent{ID: "evt-crash", OrganizationID: "demo", AssetID: "vid_3", Payload: []byte(`{"id":"vid_3"}`),
			WorkflowID: workflows.WorkflowID("evt-crash"), ReceivedAt: time.Now().Add(-time.Minute)}
		if _, _, err := s.store.CreateEvent(context.Background(), ev); err != nil { // committed, never started
			t.Fatal(err)
		}
		relay := &worker.Relay{Store: s.store, Starter: &workflows.Starter{Client: s.client}, MinAge: time.Second}
		n, err := relay.Once(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("relay: started %d, %v; want 1", n, err)
		}
		if res := s.wait(ev.WorkflowID); res.Succeeded != 1 || len(late.requests()) != 1 {
			t.Fatalf("result %+v with %d requests, want the late event delivered once", res, len(late.requests()))
		}
		if n, _ := relay.Once(context.Background()); n != 0 {
			t.Fatalf("second relay pass started %d, want 0", n)
		}
	})
}

// history returns a workflow's full history as protojson, one event per line.
func (s *stack) history(workflowID string) string {
	s.t.Helper()
	iter := s.client.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	var events []json.RawMessage
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		raw, err := protojson.Marshal(ev)
		if err != nil {
			s.t.Fatal(err)
		}
		events = append(events, raw)
	}
	out, _ := json.MarshalIndent(map[string]any{"events": events}, "", " ")
	return string(out)
}
