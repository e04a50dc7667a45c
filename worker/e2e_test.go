package worker_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the raw-row greps
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/worker"
	"github.com/streamhooks/streamhooks/workflows"
)

var update = flag.Bool("update", false, "write workflows/testdata/deliver_asset_event.json and redeliver_durable.json from a real run")

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
	spec   routers.Router
	dbURL  string
}

// rawRows returns every row of the streamhooks tables as PostgreSQL text,
// for greps that must not find a secret.
func (s *stack) rawRows() []string {
	s.t.Helper()
	db, err := sql.Open("pgx", s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, table := range []string{"organizations", "api_tokens", "webhooks", "asset_events", "deliveries", "delivery_attempts"} {
		rows, err := db.Query("SELECT t::text FROM " + table + " AS t")
		if err != nil {
			s.t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				s.t.Fatal(err)
			}
			out = append(out, table+": "+line)
		}
		rows.Close()
	}
	return out
}

func newStack(t *testing.T) *stack {
	t.Helper()
	dbURL := modelstest.NewPostgresDatabase(t)
	store, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.SetSecretKey(modelstest.TestSecretKey); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	reg := prometheus.NewRegistry()
	acts := activities.New(activities.Config{
		Store: store, Guard: egress.NewGuard(egress.LoopbackCIDRs), UserAgent: "streamhooks/e2e", Metrics: activities.NewMetrics(reg),
		Schedule: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}, AttemptTimeout: 3 * time.Second,
	})
	w := worker.New(c, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if err := service.EnsureSearchAttributes(context.Background(), c, ts.GetDefaultNamespace()); err != nil {
		t.Fatal(err)
	}
	starter := &service.Starter{Client: c, SearchAttributes: true}
	// Notifications only: the outbox subtest scans with its own.
	outbox := service.NewOutbox(store, starter, nil, reg)
	outbox.ScanInterval = time.Hour
	octx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go outbox.Run(octx)
	srv := httptest.NewServer(api.New(api.Config{Store: store, Workflows: starter, Outbox: outbox, Attempter: acts, Registry: reg,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	t.Cleanup(srv.Close)
	return &stack{t: t, store: store, client: c, api: srv, token: modelstest.Org(t, store, "demo"), svc: modelstest.ServiceToken(t, store),
		spec: loadSpec(t), dbURL: dbURL}
}

// call sends a request, validates the response against the OpenAPI
// document, and returns the status and decoded body.
func (s *stack) call(method, path, token, body string) (int, map[string]any) {
	s.t.Helper()
	status, raw := s.raw(method, path, token, body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return status, m
}

func (s *stack) raw(method, path, token, body string) (int, []byte) {
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
	s.validate(req, resp, raw)
	return resp.StatusCode, raw
}

func loadSpec(t *testing.T) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPISpec)
	if err != nil {
		t.Fatalf("load OpenAPI: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document is invalid: %v", err)
	}
	doc.Servers = nil // match any host
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// validate checks a real response against the OpenAPI document.
func (s *stack) validate(req *http.Request, resp *http.Response, body []byte) {
	s.t.Helper()
	route, params, err := s.spec.FindRoute(req)
	if err != nil {
		s.t.Errorf("%s %s: not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		s.t.Errorf("%s %s → %d does not match the OpenAPI document: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
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
	for {
		// The outbox starts an event's workflow a moment after the 202.
		err := s.client.GetWorkflow(ctx, workflowID, "").Get(ctx, &res)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			s.t.Fatalf("workflow %s: %v", workflowID, err)
		}
		return res
	}
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
		if status != 202 || m["event_id"] != "evt-1" || m["workflow_id"] != workflows.WorkflowID("evt-1") || m["sequence"] != float64(1) {
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
				if h.Get("x-streams-sequence") != "1" {
					t.Fatalf("%s request %d x-streams-sequence %q, want 1", r.secret, i, h.Get("x-streams-sequence"))
				}
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
		rows := s.rawRows()
		if len(rows) < 10 {
			t.Fatalf("only %d rows dumped", len(rows))
		}
		for _, row := range rows {
			for _, r := range []*receiver{healthy, flaky, gone} {
				if strings.Contains(row, r.secret) {
					t.Fatalf("the secret %q is stored in clear: %s", r.secret, row)
				}
			}
			if strings.Contains(row, s.token) || strings.Contains(row, s.svc) {
				t.Fatalf("an API token is stored in clear: %s", row)
			}
		}
		if *update {
			if err := os.WriteFile("../workflows/testdata/deliver_asset_event.json", []byte(history), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("deliveries API, redeliver, search attributes, metrics", func(t *testing.T) {
		var flakyID, healthyID, goneID string
		for id, r := range hooks {
			switch r {
			case flaky:
				flakyID = id
			case healthy:
				healthyID = id
			case gone:
				goneID = id
			}
		}
		status, list := s.call("GET", "/api/v1/demo/webhooks/"+flakyID+"/deliveries/", s.token, "")
		if status != 200 || list["count"] != float64(1) {
			t.Fatalf("deliveries of flaky: %d %v", status, list)
		}
		item := list["results"].([]any)[0].(map[string]any)
		if item["state"] != "succeeded" || item["attempt_count"] != float64(3) || item["asset_id"] != "vid_1" ||
			item["asset_status"] != "Completed" || item["event_id"] != "evt-1" || item["last_response_status"] != float64(200) ||
			item["sequence"] != float64(1) {
			t.Fatalf("delivery item: %v", item)
		}
		for q, want := range map[string]float64{"?status=succeeded": 1, "?status=failed": 0, "?asset_id=vid_1": 1, "?asset_id=nope": 0} {
			if _, m := s.call("GET", "/api/v1/demo/webhooks/"+flakyID+"/deliveries/"+q, s.token, ""); m["count"] != want {
				t.Fatalf("filter %s: count %v, want %v", q, m["count"], want)
			}
		}
		if status, m := s.call("GET", "/api/v1/demo/webhooks/"+flakyID+"/deliveries/?status=bogus", s.token, ""); status != 400 || m["status"] == nil {
			t.Fatalf("bad status filter: %d %v", status, m)
		}

		deliveryID := item["id"].(string)
		status, raw := s.raw("GET", "/api/v1/demo/deliveries/"+deliveryID+"/", s.token, "")
		var detail map[string]any
		_ = json.Unmarshal(raw, &detail)
		atts, _ := detail["attempts"].([]any)
		if status != 200 || len(atts) != 3 || detail["workflow_id"] != workflows.WorkflowID("evt-1") || detail["run_id"] == "" {
			t.Fatalf("delivery detail: %d %s", status, raw)
		}
		first := atts[0].(map[string]any)
		if first["response_status"] != float64(500) || first["error_class"] != "http" || first["request_headers"].(map[string]any)["X-Streams-Token"] != "********" {
			t.Fatalf("attempt 1: %v", first)
		}
		if bytes.Contains(raw, []byte(flaky.secret)) {
			t.Fatal("delivery detail leaks the secret")
		}

		// Redeliver the healthy webhook's delivery: same webhook-id, manual attempt 2.
		_, hl := s.call("GET", "/api/v1/demo/webhooks/"+healthyID+"/deliveries/", s.token, "")
		hd := hl["results"].([]any)[0].(map[string]any)["id"].(string)
		if status, m := s.call("POST", "/api/v1/demo/deliveries/"+hd+"/redeliver/", s.token, ""); status != 202 || m["state"] != "pending" {
			t.Fatalf("redeliver: %d %v", status, m)
		}
		if res := s.wait(workflows.RedeliveryID(hd, 2)); res.Succeeded != 1 {
			t.Fatalf("redelivery result %+v", res)
		}
		if *update {
			if err := os.WriteFile("../workflows/testdata/redeliver_durable.json", []byte(s.history(workflows.RedeliveryID(hd, 2))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		reqs := healthy.requests()
		if len(reqs) != 2 || reqs[1].Get("webhook-id") != hd {
			t.Fatalf("healthy saw %d requests (last webhook-id %q), want 2 with %s", len(reqs), reqs[len(reqs)-1].Get("webhook-id"), hd)
		}
		_, dd := s.call("GET", "/api/v1/demo/deliveries/"+hd+"/", s.token, "")
		if a := dd["attempts"].([]any); len(a) != 2 || a[1].(map[string]any)["manual"] != true || dd["state"] != "succeeded" {
			t.Fatalf("after redelivery: %v", dd)
		}
		_, gl := s.call("GET", "/api/v1/demo/webhooks/"+goneID+"/deliveries/", s.token, "")
		gd := gl["results"].([]any)[0].(map[string]any)["id"].(string)
		if status, m := s.call("POST", "/api/v1/demo/deliveries/"+gd+"/redeliver/", s.token, ""); status != 409 {
			t.Fatalf("redeliver to a deactivated webhook: %d %v, want 409", status, m)
		}

		// Ping: 200, 500 and a blocked address, each recorded.
		ok := newReceiver(t, "secret-ping", func(int) int { return 200 })
		bad := newReceiver(t, "secret-ping-bad", func(int) int { return 500 })
		for _, tc := range []struct {
			url, class string
			success    bool
			status     any
		}{
			{ok.srv.URL, "", true, float64(200)},
			{bad.srv.URL, "http", false, float64(500)},
			{"http://169.254.169.254/latest/meta-data/", "blocked", false, nil},
		} {
			secret := "secret-ping"
			if tc.url == bad.srv.URL {
				secret = bad.secret
			}
			id := s.createWebhook(tc.url, secret)
			status, m := s.call("POST", "/api/v1/demo/webhooks/"+id+"/ping/", s.token, "")
			if status != 200 || m["success"] != tc.success || m["error_class"] != tc.class || m["status_code"] != tc.status {
				t.Fatalf("ping %s: %d %v", tc.url, status, m)
			}
			if _, l := s.call("GET", "/api/v1/demo/webhooks/"+id+"/deliveries/", s.token, ""); l["count"] != float64(1) {
				t.Fatalf("ping %s not recorded: %v", tc.url, l)
			}
			s.call("DELETE", "/api/v1/demo/webhooks/"+id+"/", s.token, "")
		}
		if n := len(ok.requests()); n != 1 {
			t.Fatalf("ping receiver saw %d requests, want 1", n)
		}

		// Another organization sees none of it.
		other := modelstest.Org(t, s.store, "rival")
		for _, r := range []struct{ method, path string }{
			{"GET", "/api/v1/rival/deliveries/" + deliveryID + "/"},
			{"POST", "/api/v1/rival/deliveries/" + deliveryID + "/redeliver/"},
			{"GET", "/api/v1/rival/webhooks/" + flakyID + "/deliveries/"},
			{"POST", "/api/v1/rival/webhooks/" + flakyID + "/ping/"},
		} {
			if status, m := s.call(r.method, r.path, other, ""); status != 404 || m["detail"] != "Not found." {
				t.Fatalf("%s %s as rival: %d %v, want 404", r.method, r.path, status, m)
			}
		}
		if status, _ := s.call("GET", "/api/v1/demo/deliveries/"+deliveryID+"/", other, ""); status != 404 {
			t.Fatalf("rival token on demo's path: %d, want 404", status)
		}

		// Operators find the event's workflow by search attributes.
		query := `OrganizationId="demo" AND AssetId="vid_1" AND AssetStatus="Completed"`
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := s.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
			found := false
			for _, ex := range resp.GetExecutions() {
				found = found || ex.Execution.WorkflowId == workflows.WorkflowID("evt-1")
			}
			if err == nil && found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query %s found nothing (%v)", query, err)
			}
			time.Sleep(200 * time.Millisecond)
		}

		resp, err := http.Get(s.api.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`streamhooks_deliveries_total{outcome="succeeded"}`, `streamhooks_delivery_attempts_total{class="5xx"}`,
			`streamhooks_event_to_first_attempt_seconds_count`, `streamhooks_pending_deliveries`,
			`streamhooks_api_requests_total{method="POST",route="/internal/v1/asset-events/",status="202"}`,
		} {
			if !bytes.Contains(metrics, []byte(want)) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if _, spec := s.call("GET", "/openapi.json", "", ""); spec["openapi"] != "3.0.3" {
			t.Fatalf("/openapi.json: %v", spec["openapi"])
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

	t.Run("outbox starts events whose start was lost, past a poisoned row", func(t *testing.T) {
		late := newReceiver(t, "secret-late", func(int) int { return 200 })
		s.createWebhook(late.srv.URL, late.secret)
		ctx := context.Background()
		// The oldest row is poisoned: Temporal refuses its workflow id
		// (over 1,000 bytes) on every start.
		poison := &models.AssetEvent{ID: "evt-poison", OrganizationID: "demo", AssetID: "vid_p", Payload: []byte(`{"id":"vid_p"}`),
			WorkflowID: "asset-event:" + strings.Repeat("p", 1200), ReceivedAt: time.Now().Add(-2 * time.Minute)}
		if _, _, err := s.store.CreateEvent(ctx, poison); err != nil {
			t.Fatal(err)
		}
		var good []string
		// Three assets, not three events of one: in the default "latest"
		// mode the newest event of an asset supersedes older ones (DESIGN
		// §9), and this test is about the outbox, not ordering.
		for i := range 3 { // committed, never started (a crash between commit and start)
			asset := fmt.Sprintf("vid_3_%d", i)
			ev := &models.AssetEvent{ID: fmt.Sprintf("evt-crash-%d", i), OrganizationID: "demo", AssetID: asset, Payload: []byte(`{"id":"` + asset + `"}`),
				ReceivedAt: time.Now().Add(-time.Minute)}
			ev.WorkflowID = workflows.WorkflowID(ev.ID)
			if _, _, err := s.store.CreateEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
			good = append(good, ev.WorkflowID)
		}
		reg := prometheus.NewRegistry()
		ob := service.NewOutbox(s.store, &service.Starter{Client: s.client}, nil, reg)
		ob.ScanInterval, ob.MinAge = 200*time.Millisecond, time.Second
		octx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); ob.Run(octx) }()
		for _, id := range good {
			if res := s.wait(id); res.Succeeded != 1 {
				t.Fatalf("%s: result %+v, want the late event delivered", id, res)
			}
		}
		stop()
		<-done
		if n := len(late.requests()); n != 3 {
			t.Fatalf("late receiver got %d requests, want 3", n)
		}
		stored, err := s.store.GetEvent(ctx, poison.ID)
		if err != nil || stored.WorkflowStartedAt != nil || stored.StartAttempts < 1 || stored.LastStartError == "" || stored.NextStartAt == nil || !stored.NextStartAt.After(time.Now()) {
			t.Fatalf("poisoned row %+v, %v: want unstarted, deferred to the future with its error recorded", stored, err)
		}
		if n, _ := s.store.UnstartedEvents(ctx); n != 1 {
			t.Fatalf("unstarted events %d, want only the poisoned one", n)
		}
		if f := failedStarts(t, reg); f < 1 {
			t.Fatalf("streamhooks_event_starts_total{result=failed} = %v, want >= 1", f)
		}
		if err := s.store.MarkEventsStarted(ctx, poison.ID); err != nil { // out of the way of later tests
			t.Fatal(err)
		}
	})

	t.Run("any accepted event id is delivered", func(t *testing.T) {
		for _, w := range s.webhooks() { // earlier subtests' receivers are closed
			s.call("PATCH", "/api/v1/demo/webhooks/"+w.ID+"/", s.token, `{"is_active": false}`)
		}
		uni := newReceiver(t, "secret-unicode", func(int) int { return 200 })
		s.createWebhook(uni.srv.URL, uni.secret)
		const active = 1
		ids := []string{
			"naïve-1", "café-1", "Ærø-ünïcödé", // Latin accents
			"日本語のイベント-1", "视频已完成", "비디오-1", // CJK, Hangul
			"emoji-🎬🚀-1", "👩‍👩‍👧‍👦", // emoji, a ZWJ sequence
			"עברית-אירוע", "حدث-مرحبا", "\u202eevil-rtl", // right-to-left text, an RTL override
			"e\u0301vent-combining", "Z\u0351\u0352\u0353algo", // combining marks
			"with space/and?query#frag%41", // printable ASCII, kept as it is
			strings.Repeat("長", 200),       // 600 bytes: the readable part is cut and a hash added
		}
		answers := map[string]map[string]any{}
		for i, id := range ids {
			body, _ := json.Marshal(map[string]any{"organization_id": "demo", "event_id": id, "asset": map[string]any{"id": fmt.Sprintf("vid_u%d", i)}})
			status, m := s.call("POST", "/internal/v1/asset-events/", s.svc, string(body))
			if status != 202 || m["event_id"] != id {
				t.Fatalf("event %q: %d %v, want 202 with the id as sent", id, status, m)
			}
			wid, _ := m["workflow_id"].(string)
			if !workflows.ValidWorkflowID(wid) || len(wid) > 1000 {
				t.Fatalf("event %q: workflow id %q is not printable ASCII of at most 1000 bytes", id, wid)
			}
			answers[id] = m
		}
		for _, id := range ids {
			// The same event again: nothing new, the same answer.
			body, _ := json.Marshal(map[string]any{"organization_id": "demo", "event_id": id, "asset": map[string]any{"id": "ignored"}})
			if status, m := s.call("POST", "/internal/v1/asset-events/", s.svc, string(body)); status != 202 || fmt.Sprint(m) != fmt.Sprint(answers[id]) {
				t.Fatalf("event %q again: %d %v, want 202 %v", id, status, m, answers[id])
			}
		}
		seen := map[string]bool{}
		for _, id := range ids {
			wid := answers[id]["workflow_id"].(string)
			if seen[wid] {
				t.Fatalf("two event ids share the workflow id %q", wid)
			}
			seen[wid] = true
			if res := s.wait(wid); res.Succeeded != active {
				ds, _ := s.store.ListEventDeliveries(context.Background(), id)
				t.Fatalf("event %q: result %+v, want %d succeeded; deliveries %+v", id, res, active, ds)
			}
		}
		_, m := s.call("POST", "/internal/v1/asset-events/", s.svc, `{"organization_id": "demo", "event_id": "evt-ascii-after", "asset": {"id": "vid_after"}}`)
		if res := s.wait(m["workflow_id"].(string)); res.Succeeded != active {
			t.Fatalf("ASCII event after the others: %+v, want %d succeeded", res, active)
		}
		if n := len(uni.requests()); n != len(ids)+1 {
			t.Fatalf("receiver got %d requests, want %d", n, len(ids)+1)
		}
	})

	t.Run("reconciler resumes what no live workflow drives, never a live one", func(t *testing.T) {
		ctx := context.Background()
		for _, w := range s.webhooks() { // one webhook, which holds its delivery back
			s.call("PATCH", "/api/v1/demo/webhooks/"+w.ID+"/", s.token, `{"is_active": false}`)
		}
		var release atomic.Bool
		stuck := newReceiver(t, "secret-stuck", func(int) int {
			if release.Load() {
				return 200
			}
			return 429 // with no Retry-After: the schedule's next wait
		})
		s.createWebhook(stuck.srv.URL, stuck.secret)
		_, m := s.call("POST", "/internal/v1/asset-events/", s.svc, `{"organization_id": "demo", "event_id": "evt-reconcile", "asset": {"id": "vid_r"}}`)
		wid := m["workflow_id"].(string)
		deadline := time.Now().Add(20 * time.Second)
		for len(stuck.requests()) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		// Pretend the delivery is long overdue: a live owner must still
		// be left alone.
		db, err := sql.Open("pgx", s.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		overdue := func() {
			t.Helper()
			if _, err := db.Exec(`UPDATE deliveries SET next_attempt_at = now() - interval '1 hour' WHERE event_id = 'evt-reconcile' AND state = 'pending'`); err != nil {
				t.Fatal(err)
			}
		}
		overdue()
		reg := prometheus.NewRegistry()
		rec := &service.Reconciler{Store: s.store, Workflows: &service.Starter{Client: s.client, SearchAttributes: true}, Grace: time.Minute, Resumed: service.NewResumedCounter(reg)}
		if n, err := rec.Once(ctx); err != nil || n != 0 {
			t.Fatalf("reconcile with a live owner: resumed %d, %v; want 0", n, err)
		}
		// An operator terminates the workflow: the delivery has no owner.
		if err := s.client.TerminateWorkflow(ctx, wid, "", "test: an operator ended it"); err != nil {
			t.Fatal(err)
		}
		first := len(stuck.requests())
		release.Store(true)
		overdue()
		if n, err := rec.Once(ctx); err != nil || n != 1 {
			t.Fatalf("reconcile after the termination: resumed %d, %v; want 1", n, err)
		}
		if res := s.wait(wid); res.Succeeded != 1 {
			t.Fatalf("resumed run: %+v, want 1 succeeded", res)
		}
		reqs := stuck.requests()
		if len(reqs) != first+1 || reqs[0].Get("webhook-id") != reqs[len(reqs)-1].Get("webhook-id") {
			t.Fatalf("receiver got %d requests after %d, want one more with the same webhook-id", len(reqs), first)
		}
		ds, _ := s.store.ListEventDeliveries(ctx, "evt-reconcile")
		if len(ds) != 1 || ds[0].State != models.DeliverySucceeded || ds[0].AttemptCount != first+1 {
			t.Fatalf("deliveries %+v, want one succeeded after %d attempts", ds, first+1)
		}

		// An event marked started whose workflow Temporal no longer has
		// (its state lost): resumed too.
		ev := &models.AssetEvent{ID: "evt-lost", OrganizationID: "demo", AssetID: "vid_l", Payload: []byte(`{"id":"vid_l"}`), ReceivedAt: time.Now().Add(-time.Hour)}
		ev.WorkflowID = workflows.WorkflowID(ev.ID)
		if _, _, err := s.store.CreateEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE asset_events SET workflow_started_at = now() - interval '1 hour' WHERE id = 'evt-lost'`); err != nil {
			t.Fatal(err)
		}
		if n, err := rec.Once(ctx); err != nil || n != 1 {
			t.Fatalf("reconcile a lost event: resumed %d, %v; want 1", n, err)
		}
		if res := s.wait(ev.WorkflowID); res.Succeeded != 1 {
			t.Fatalf("lost event: %+v, want 1 succeeded", res)
		}
		if n, err := rec.Once(ctx); err != nil || n != 0 {
			t.Fatalf("reconcile once all is done: resumed %d, %v; want 0", n, err)
		}
		if got := counterValue(t, rec.Resumed); got != 2 {
			t.Fatalf("streamhooks_reconciler_resumed_total = %v, want 2", got)
		}
	})
}

// webhooks returns the demo organization's live webhooks.
func (s *stack) webhooks() []models.Webhook {
	s.t.Helper()
	ws, _, err := s.store.ListWebhooks(context.Background(), "demo", models.Page{Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return ws
}

// failedStarts reads the outbox's failed-start counter from reg.
func failedStarts(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "streamhooks_event_starts_total" && l.GetName() == "result" && l.GetValue() == "failed" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
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

// tWriter sends log lines to the test log, so a failure shows what the
// server said.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
