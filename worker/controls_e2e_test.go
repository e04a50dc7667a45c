package worker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/workflows"
)

// sink is a loopback endpoint that records every request and answers
// with the status code its answer function picks.
type sink struct {
	mu     sync.Mutex
	reqs   []http.Header
	bodies [][]byte
	answer func() int
	srv    *httptest.Server
}

func newSink(t *testing.T, answer func() int) *sink {
	k := &sink{answer: answer}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		k.reqs = append(k.reqs, r.Header.Clone())
		k.bodies = append(k.bodies, body)
		k.mu.Unlock()
		w.WriteHeader(k.answer())
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *sink) got() ([]http.Header, [][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]http.Header(nil), k.reqs...), append([][]byte(nil), k.bodies...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestControls covers the webhook controls of DESIGN §10 through the real
// API, worker and Temporal server; every response is validated against
// the OpenAPI document (stack.call).
func TestControls(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	event := func(id, asset, typ, status string) string {
		return fmt.Sprintf(`{"organization_id": "demo", "event_id": %q, "asset": {"id": %q, "type": %q, "video": {"status": %q}}}`, id, asset, typ, status)
	}
	send := func(body string) string {
		t.Helper()
		code, m := s.call("POST", "/internal/v1/asset-events/", s.svc, body)
		if code != 202 {
			t.Fatalf("event: %d %v", code, m)
		}
		return m["workflow_id"].(string)
	}

	t.Run("filters", func(t *testing.T) {
		k := newSink(t, func() int { return 200 })
		code, m := s.call("POST", "/api/v1/demo/webhooks/", s.token,
			`{"url": "`+k.srv.URL+`", "secret_token": "f", "statuses": ["completed", "ERROR", "Completed"], "asset_types": ["Video"]}`)
		if code != 201 || fmt.Sprint(m["statuses"]) != "[Completed Error]" || fmt.Sprint(m["asset_types"]) != "[video]" || m["previous_secret_expires_at"] != nil {
			t.Fatalf("create with filters: %d %v", code, m)
		}
		id := m["id"].(string)
		code, raw := s.raw("PATCH", "/api/v1/demo/webhooks/"+id+"/", s.token, `{"statuses": ["Foo", "Queued"], "asset_types": "video"}`)
		if code != 400 || string(raw) != `{"asset_types":["Expected a list of items but got type \"str\"."],"statuses":["\"Foo\" is not a valid choice."]}` {
			t.Fatalf("bad filters: %d %s", code, raw)
		}
		if got, _ := s.store.GetWebhook(ctx, "demo", id); len(got.Statuses) != 2 {
			t.Fatalf("a rejected PATCH changed the filters: %v", got.Statuses)
		}
		for i, c := range []struct {
			typ, status string
			want        bool
		}{{"video", "Completed", true}, {"video", "Queued", false}, {"livestream", "Error", false}, {"video", "", false}, {"video", "error", true}} {
			wf := send(event(fmt.Sprintf("filter-%d", i), fmt.Sprintf("fa-%d", i), c.typ, c.status))
			s.wait(wf)
			ds, err := s.store.ListEventDeliveries(ctx, fmt.Sprintf("filter-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, d := range ds {
				found = found || d.WebhookID == id
			}
			if found != c.want {
				t.Errorf("%s/%q: delivery to the filtered webhook = %v, want %v", c.typ, c.status, found, c.want)
			}
		}
		if reqs, _ := k.got(); len(reqs) != 2 {
			t.Errorf("the filtered webhook got %d requests, want 2", len(reqs))
		}
		s.call("DELETE", "/api/v1/demo/webhooks/"+id+"/", s.token, "")
	})

	t.Run("secret rotation is verified by the Standard Webhooks library", func(t *testing.T) {
		k := newSink(t, func() int { return 200 })
		id := s.createWebhook(k.srv.URL, "first-secret")
		code, m := s.call("POST", "/api/v1/demo/webhooks/"+id+"/rotate-secret/", s.token, `{"grace_period_seconds": 3600}`)
		newSecret, _ := m["secret_token"].(string)
		exp, _ := m["previous_secret_expires_at"].(string)
		if code != 200 || !strings.HasPrefix(newSecret, "whsec_") || exp == "" {
			t.Fatalf("rotate: %d %v", code, m)
		}
		if at, err := time.Parse(time.RFC3339, exp); err != nil || time.Until(at) < 59*time.Minute {
			t.Fatalf("previous_secret_expires_at %q: %v", exp, err)
		}
		verify := func(h http.Header, body []byte, secret string) error {
			wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			return wh.Verify(body, h)
		}
		last := func() (http.Header, []byte) {
			reqs, bodies := k.got()
			return reqs[len(reqs)-1], bodies[len(bodies)-1]
		}
		s.wait(send(event("rot-1", "rot", "video", "Completed")))
		h, body := last()
		if err := verify(h, body, newSecret); err != nil {
			t.Errorf("new secret during the grace window: %v", err)
		}
		if err := verify(h, body, "first-secret"); err != nil {
			t.Errorf("old secret during the grace window: %v", err)
		}
		if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 || h.Get("x-streams-token") != newSecret {
			t.Errorf("during the grace window: %d signatures, x-streams-token %q", n, h.Get("x-streams-token"))
		}
		// A one-second grace, then past it: the old secret no longer verifies.
		code, m = s.call("POST", "/api/v1/demo/webhooks/"+id+"/rotate-secret/", s.token, `{"secret_token": "third-secret", "grace_period_seconds": 1}`)
		if code != 200 || m["secret_token"] != "third-secret" {
			t.Fatalf("rotate to a given secret: %d %v", code, m)
		}
		time.Sleep(1100 * time.Millisecond)
		s.wait(send(event("rot-2", "rot", "video", "Completed")))
		h, body = last()
		if err := verify(h, body, "third-secret"); err != nil {
			t.Errorf("new secret after the grace window: %v", err)
		}
		if err := verify(h, body, newSecret); err == nil {
			t.Errorf("the old secret still verifies after its grace window")
		}
		if _, m = s.call("GET", "/api/v1/demo/webhooks/"+id+"/", s.token, ""); m["previous_secret_expires_at"] != nil {
			t.Errorf("previous_secret_expires_at after the window: %v", m["previous_secret_expires_at"])
		}
		for _, bad := range []string{`{"grace_period_seconds": 604801}`, `{"grace_period_seconds": "1"}`, `{"secret_token": ""}`} {
			if code, m := s.call("POST", "/api/v1/demo/webhooks/"+id+"/rotate-secret/", s.token, bad); code != 400 {
				t.Errorf("%s: %d %v, want 400", bad, code, m)
			}
		}
		if got, _ := s.store.GetWebhook(ctx, "demo", id); got.SecretToken != "third-secret" {
			t.Errorf("a rejected rotation changed the secret")
		}
		s.call("DELETE", "/api/v1/demo/webhooks/"+id+"/", s.token, "")
	})

	t.Run("recovery of 1000 failed deliveries", func(t *testing.T) {
		k := newSink(t, func() int { return 200 })
		id := s.createWebhook(k.srv.URL, "rec-secret")
		since := time.Now().Add(-time.Hour).UTC()
		mk := func(evID, asset string, at time.Time, end models.DeliveryState) {
			t.Helper()
			started := at
			if _, _, err := s.store.CreateEvent(ctx, &models.AssetEvent{ID: evID, OrganizationID: "demo", AssetID: asset, AssetStatus: "Completed",
				Payload: []byte(`{"id": "` + asset + `"}`), WorkflowID: "wf-" + evID, WorkflowStartedAt: &started, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.store.CreateDeliveries(ctx, evID, models.WorkflowRun{WorkflowID: "wf-" + evID}); err != nil {
				t.Fatal(err)
			}
			if err := s.store.FinishDelivery(ctx, models.DeliveryID(evID, id), end); err != nil {
				t.Fatal(err)
			}
		}
		at := since.Add(time.Minute)
		for i := range 999 {
			mk(fmt.Sprintf("rec-%d", i), fmt.Sprintf("ra-%d", i), at, models.DeliveryFailed)
		}
		// latest mode: of two failed states of one asset only the newer
		// is sent; an asset whose newer state succeeded gets nothing; an
		// event before since is left alone.
		mk("rec-x1", "rx", at, models.DeliveryFailed)
		mk("rec-x2", "rx", at.Add(time.Second), models.DeliveryFailed)
		mk("rec-y1", "ry", at, models.DeliveryFailed)
		mk("rec-y2", "ry", at.Add(time.Second), models.DeliverySucceeded)
		mk("rec-old", "rold", since.Add(-time.Minute), models.DeliveryFailed)

		if code, raw := s.raw("POST", "/api/v1/demo/webhooks/"+id+"/recover/", s.token, `{"since": "yesterday"}`); code != 400 || !strings.Contains(string(raw), `"since"`) {
			t.Fatalf("bad since: %d %s", code, raw)
		}
		code, m := s.call("POST", "/api/v1/demo/webhooks/"+id+"/recover/", s.token, `{"since": "`+since.Format(time.RFC3339Nano)+`"}`)
		recID, _ := m["id"].(string)
		if code != 202 || !strings.HasPrefix(recID, "rec_") || m["state"] != "running" || m["workflow_id"] != workflows.RecoveryWorkflowID(recID) {
			t.Fatalf("recover: %d %v", code, m)
		}
		var seenRunning []string
		waitFor(t, 3*time.Minute, "the recovery to complete", func() bool {
			_, p := s.call("GET", "/api/v1/demo/webhooks/"+id+"/recoveries/"+recID+"/", s.token, "")
			if at := fmt.Sprint(p["redelivered"], "/", p["total"]); p["state"] == "running" && (len(seenRunning) == 0 || seenRunning[len(seenRunning)-1] != at) {
				seenRunning = append(seenRunning, at)
			}
			return p["state"] == "completed"
		})
		code, raw := s.raw("GET", "/api/v1/demo/webhooks/"+id+"/recoveries/"+recID+"/", s.token, "")
		if want := `{"id":"` + recID + `","state":"completed","total":1000,"redelivered":1000,"succeeded":1000,"failed":0}`; code != 200 || string(raw) != want {
			t.Fatalf("final: %d %s\nwant %s", code, raw, want)
		}
		if len(seenRunning) == 0 {
			t.Errorf("never saw the recovery running")
		}
		t.Logf("progress while running: %v", seenRunning)
		reqs, _ := k.got()
		ids := map[string]bool{}
		for _, h := range reqs {
			ids[h.Get("webhook-id")] = true
		}
		if len(reqs) != 1000 || len(ids) != 1000 || !ids[models.DeliveryID("rec-x2", id)] || ids[models.DeliveryID("rec-x1", id)] ||
			ids[models.DeliveryID("rec-y1", id)] || ids[models.DeliveryID("rec-old", id)] {
			t.Errorf("receiver got %d requests of %d deliveries; want the 1000 planned ones", len(reqs), len(ids))
		}
		if code, _ := s.call("GET", "/api/v1/demo/webhooks/"+id+"/recoveries/rec_nope/", s.token, ""); code != 404 {
			t.Errorf("unknown recovery: %d", code)
		}
		s.call("PATCH", "/api/v1/demo/webhooks/"+id+"/", s.token, `{"is_active": false}`)
		if code, m := s.call("POST", "/api/v1/demo/webhooks/"+id+"/recover/", s.token, `{"since": "`+since.Format(time.RFC3339)+`"}`); code != 409 {
			t.Errorf("recover an inactive webhook: %d %v", code, m)
		}
	})

	t.Run("retention schedule", func(t *testing.T) {
		starter := &service.Starter{Client: s.client}
		for range 2 { // creating, then updating, the schedule
			if err := starter.EnsureRetentionSchedule(ctx, 24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		h := s.client.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleID)
		if _, err := h.Describe(ctx); err != nil {
			t.Fatalf("describe %s: %v", workflows.RetentionScheduleID, err)
		}
		old := time.Now().Add(-48 * time.Hour).UTC()
		if _, _, err := s.store.CreateEvent(ctx, &models.AssetEvent{ID: "ret-old", OrganizationID: "demo", AssetID: "ret", Payload: []byte(`{}`),
			WorkflowID: "wf-ret", WorkflowStartedAt: &old, PreparedAt: &old, ReceivedAt: old}); err != nil {
			t.Fatal(err)
		}
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "retention to delete the old event", func() bool {
			_, err := s.store.GetEvent(ctx, "ret-old")
			return models.ErrorCode(err) == models.ENOTFOUND
		})
		_ = h.Delete(ctx)
	})
}
