package activities_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
)

// TestStartDeliveries: one activity snapshots the webhooks and makes
// every first attempt, each answer meaning what it means for a single
// attempt (2xx delivered, 5xx retry with the jittered wait recorded, 410
// failed and the webhook deactivated), each attempt a signed request and
// a row; a retry of the activity sends nothing again.
func TestStartDeliveries(t *testing.T) {
	e := newEnv(t, 5*time.Second, true)
	ctx := context.Background()
	answers := map[int]int{0: http.StatusOK, 1: http.StatusInternalServerError, 2: http.StatusGone}
	recs := make([]*recorder, len(answers))
	hooks := map[string]int{} // webhook id → index
	for i := range recs {
		code := answers[i]
		recs[i] = newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(code) })
		url := recs[i].srv.URL
		w, err := e.store.CreateWebhook(ctx, "org", models.WebhookUpdate{URL: &url, SecretToken: ptr(secret)})
		if err != nil {
			t.Fatal(err)
		}
		hooks[w.ID] = i
	}
	payload := `{"id":"a1","title":"t","video":{"status":"Completed"}}`
	ev := &models.AssetEvent{ID: "ev-first", OrganizationID: "org", AssetID: "a1", Payload: []byte(payload), WorkflowID: "asset-event:ev-first"}
	if _, _, err := e.store.CreateEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for try := range 2 {
		res, err := e.acts.StartDeliveries(ctx, activities.PrepareInput{EventID: ev.ID, Inline: 100})
		if err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
		if res.Total != 3 || len(res.Deliveries) != 3 || len(res.First) != 3 {
			t.Fatalf("try %d: total %d, %d listed, %d first results; want 3 each", try, res.Total, len(res.Deliveries), len(res.First))
		}
		for i, d := range res.Deliveries {
			want := map[int]activities.Outcome{0: activities.OutcomeDelivered, 1: activities.OutcomeRetry, 2: activities.OutcomeFailed}[hooks[d.WebhookID]]
			if try == 1 {
				// Rows committed: the snapshot now shows attempt 1 made
				// (settled, or resumed after it), so nothing is sent again.
				want = ""
			}
			if got := res.First[i].Outcome; got != want {
				t.Fatalf("try %d: delivery to hook %d first outcome %q, want %q", try, hooks[d.WebhookID], got, want)
			}
		}
	}
	for i, r := range recs {
		if r.count() != 1 {
			t.Fatalf("receiver %d got %d requests, want 1", i, r.count())
		}
		verify(t, r.reqs[0].header, r.reqs[0].body)
		if got := r.reqs[0].header.Get("x-streams-sequence"); got != "1" {
			t.Fatalf("receiver %d x-streams-sequence %q, want 1 (the first event of asset a1)", i, got)
		}
		if string(r.reqs[0].body) != payload {
			t.Fatalf("receiver %d body %q, want the payload as stored", i, r.reqs[0].body)
		}
	}
	ds, err := e.store.DeliveryPage(ctx, ev.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		i := hooks[d.WebhookID]
		rows := e.attempts(d.ID)
		if len(rows) != 1 || rows[0].AttemptNumber != 1 || rows[0].ResponseStatus != answers[i] {
			t.Fatalf("hook %d: attempt rows %+v, want one attempt 1 answered %d", i, rows, answers[i])
		}
		wantState := map[int]models.DeliveryState{0: models.DeliverySucceeded, 1: models.DeliveryPending, 2: models.DeliveryFailed}[i]
		if d.State != wantState || d.AttemptCount != 1 {
			t.Fatalf("hook %d: state %s after %d attempts, want %s after 1", i, d.State, d.AttemptCount, wantState)
		}
		if i == 1 {
			wait := d.NextAttemptAt.Sub(rows[0].FinishedAt)
			planned := activities.Jitter(activities.DefaultSchedule[0], d.ID, 1)
			if wait < planned-time.Second || wait > planned+time.Second {
				t.Fatalf("next attempt in %v after the failure, want the workflow's jittered wait %v", wait, planned)
			}
		}
	}
	for id, i := range hooks {
		w, err := e.store.GetWebhook(ctx, "org", id)
		if err != nil {
			t.Fatal(err)
		}
		if w.IsActive != (i != 2) {
			t.Fatalf("hook %d active %v; only the 410 one is deactivated", i, w.IsActive)
		}
	}
}
