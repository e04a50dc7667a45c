package models_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := models.ErrorCode(err); got != want {
		t.Fatalf("error code: got %q (%v), want %q", got, err, want)
	}
}

func TestMigrateTwiceAppliesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		applied, err := s.Migrate(context.Background())
		if err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Fatalf("second migrate applied %v, want nothing", applied)
		}
	})
}

func TestOrganizations(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if _, err := s.CreateOrganization(ctx, "dcek2m", "Acme"); err != nil {
			t.Fatalf("create: %v", err)
		}
		tests := []struct {
			name string
			id   string
			want string
		}{
			{"duplicate", "dcek2m", models.ECONFLICT},
			{"empty", "", models.EINVALID},
			{"slash", "a/b", models.EINVALID},
			{"space", "a b", models.EINVALID},
			{"too long", strings.Repeat("a", 64), models.EINVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateOrganization(ctx, tt.id, "")
				wantCode(t, err, tt.want)
			})
		}
		org, err := s.GetOrganization(ctx, "dcek2m")
		if err != nil || org.Name != "Acme" {
			t.Fatalf("get: got %+v, %v; want Acme", org, err)
		}
		_, err = s.GetOrganization(ctx, "nope")
		wantCode(t, err, models.ENOTFOUND)
	})
}

func TestTokens(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		tok := modelstest.Org(t, s, "acme")
		if !strings.HasPrefix(tok, "shk_") || len(tok) != 52 {
			t.Fatalf("token %q: want shk_ and 48 hex digits", tok)
		}
		p, err := s.Authenticate(ctx, tok)
		if err != nil || p.Scope != models.ScopeCustomer || p.OrganizationID != "acme" {
			t.Fatalf("authenticate: got %+v, %v", p, err)
		}
		svc := modelstest.ServiceToken(t, s)
		p, err = s.Authenticate(ctx, svc)
		if err != nil || p.Scope != models.ScopeService || p.OrganizationID != "" {
			t.Fatalf("authenticate service: got %+v, %v", p, err)
		}

		_, err = s.Authenticate(ctx, tok+"x")
		wantCode(t, err, models.ENOTFOUND)
		_, err = s.CreateToken(ctx, models.ScopeCustomer, "")
		wantCode(t, err, models.EINVALID)
		_, err = s.CreateToken(ctx, models.ScopeCustomer, "ghost")
		wantCode(t, err, models.ENOTFOUND)
		_, err = s.CreateToken(ctx, models.ScopeService, "acme")
		wantCode(t, err, models.EINVALID)

		if err := s.RevokeToken(ctx, tok); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		_, err = s.Authenticate(ctx, tok)
		wantCode(t, err, models.ENOTFOUND)
		wantCode(t, s.RevokeToken(ctx, tok), models.ENOTFOUND)
	})
}

func TestWebhooks(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		modelstest.Org(t, s, "b")
		var ids []string
		for i := range 3 {
			w, err := s.CreateWebhook(ctx, "a", models.WebhookUpdate{URL: ptr("https://example.com/" + string(rune('x'+i))), SecretToken: ptr("s3cret")})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !w.IsActive || w.OrganizationID != "a" {
				t.Fatalf("created %+v: want active webhook of a", w)
			}
			ids = append(ids, w.ID)
			time.Sleep(2 * time.Millisecond) // distinct created_at for a stable order
		}
		page, total, err := s.ListWebhooks(ctx, "a", models.Page{Limit: 2, Offset: 1})
		if err != nil || total != 3 || len(page) != 2 || page[0].ID != ids[1] || page[1].ID != ids[2] {
			t.Fatalf("list: got %d rows of %d (%v), want rows 2-3 of 3", len(page), total, err)
		}
		if _, total, _ := s.ListWebhooks(ctx, "b", models.Page{Limit: 10}); total != 0 {
			t.Fatalf("org b sees %d webhooks, want 0", total)
		}

		_, err = s.GetWebhook(ctx, "b", ids[0])
		wantCode(t, err, models.ENOTFOUND)
		_, err = s.GetWebhook(ctx, "a", "not-a-uuid")
		wantCode(t, err, models.ENOTFOUND)
		_, err = s.UpdateWebhook(ctx, "b", ids[0], models.WebhookUpdate{URL: ptr("https://evil.example")})
		wantCode(t, err, models.ENOTFOUND)
		wantCode(t, s.DeleteWebhook(ctx, "b", ids[0]), models.ENOTFOUND)

		w, err := s.UpdateWebhook(ctx, "a", ids[0], models.WebhookUpdate{IsActive: ptr(false)})
		if err != nil || w.IsActive || w.DeactivatedReason == "" || w.URL != "https://example.com/x" {
			t.Fatalf("deactivate: got %+v, %v", w, err)
		}
		w, err = s.UpdateWebhook(ctx, "a", ids[0], models.WebhookUpdate{IsActive: ptr(true), SecretToken: ptr("new")})
		if err != nil || !w.IsActive || w.DeactivatedReason != "" || w.SecretToken != "new" {
			t.Fatalf("reactivate: got %+v, %v", w, err)
		}

		if err := s.DeleteWebhook(ctx, "a", ids[0]); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err = s.GetWebhook(ctx, "a", ids[0])
		wantCode(t, err, models.ENOTFOUND)
		wantCode(t, s.DeleteWebhook(ctx, "a", ids[0]), models.ENOTFOUND)
		if _, total, _ := s.ListWebhooks(ctx, "a", models.Page{Limit: 10}); total != 2 {
			t.Fatalf("after delete: %d webhooks, want 2", total)
		}
	})
}

func TestEventsAndDeliveries(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		var hooks []*models.Webhook
		for _, u := range []string{"https://one.example", "https://two.example", "https://off.example"} {
			w, err := s.CreateWebhook(ctx, "a", models.WebhookUpdate{URL: ptr(u), SecretToken: ptr("k")})
			if err != nil {
				t.Fatal(err)
			}
			hooks = append(hooks, w)
		}
		if _, err := s.UpdateWebhook(ctx, "a", hooks[2].ID, models.WebhookUpdate{IsActive: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		payload := []byte(`{"z":1, "id":"vid1","a":  [1,2] ,"video":{"status":"Completed"}}`)
		ev, created, err := s.CreateEvent(ctx, &models.AssetEvent{ID: "e1", OrganizationID: "a", AssetID: "vid1", Payload: payload, WorkflowID: "wf-e1"})
		if err != nil || !created {
			t.Fatalf("create event: created=%v err=%v", created, err)
		}
		again, created, err := s.CreateEvent(ctx, &models.AssetEvent{ID: "e1", OrganizationID: "a", AssetID: "other", Payload: []byte(`{}`), WorkflowID: "wf-x"})
		if err != nil || created || again.WorkflowID != "wf-e1" || !bytes.Equal(again.Payload, payload) {
			t.Fatalf("repeat event: got created=%v wf=%q err=%v, want the first row", created, again.WorkflowID, err)
		}
		_ = ev

		ds, err := s.CreateDeliveries(ctx, "e1", models.WorkflowRun{WorkflowID: "wf-e1", RunID: "r1"})
		if err != nil || len(ds) != 2 {
			t.Fatalf("create deliveries: got %d, %v; want 2 (inactive webhook skipped)", len(ds), err)
		}
		ds2, err := s.CreateDeliveries(ctx, "e1", models.WorkflowRun{WorkflowID: "wf-e1", RunID: "r1"})
		if err != nil || len(ds2) != 2 || ds2[0].ID != ds[0].ID {
			t.Fatalf("create deliveries again: got %v, %v; want the same two", ds2, err)
		}
		if ds[0].ID != models.DeliveryID("e1", ds[0].WebhookID) {
			t.Fatalf("delivery id %s is not derived from event and webhook", ds[0].ID)
		}

		target, err := s.LoadDeliveryTarget(ctx, ds[0].ID)
		if err != nil || !bytes.Equal(target.Payload, payload) || target.Webhook.SecretToken != "k" {
			t.Fatalf("load target: got %+v, %v", target, err)
		}
		urls, err := s.WebhookURLs(ctx, []string{hooks[0].ID, hooks[1].ID, "missing"})
		if err != nil || len(urls) != 2 || urls[hooks[0].ID] != "https://one.example" || urls[hooks[1].ID] != "https://two.example" {
			t.Fatalf("webhook urls: got %v, %v", urls, err)
		}

		next := time.Now().Add(time.Minute)
		attempt := &models.DeliveryAttempt{DeliveryID: ds[0].ID, AttemptNumber: 1, RequestURL: "https://one.example", RequestHeaders: "{}",
			ResponseStatus: 500, ErrorClass: models.ErrorClassHTTP, StartedAt: time.Now(), FinishedAt: time.Now()}
		if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: attempt, Outcome: models.AttemptOutcome{State: models.DeliveryPending, NextAttemptAt: &next}}); err != nil {
			t.Fatalf("record attempt: %v", err)
		}
		// Recording the same attempt again (a retried activity) changes nothing.
		dup := *attempt
		dup.ID = 0
		if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: &dup, Outcome: models.AttemptOutcome{State: models.DeliveryPending, NextAttemptAt: &next}}); err != nil {
			t.Fatalf("record attempt again: %v", err)
		}
		atts, err := s.ListAttempts(ctx, ds[0].ID)
		if err != nil || len(atts) != 1 {
			t.Fatalf("attempts: got %d, %v; want 1", len(atts), err)
		}
		if d := atts[0].StartedAt.Sub(attempt.StartedAt).Abs(); d > time.Millisecond {
			t.Fatalf("started_at read back %v, wrote %v", atts[0].StartedAt, attempt.StartedAt)
		}
		d, _ := s.GetDelivery(ctx, ds[0].ID)
		if d.AttemptCount != 1 || d.LastStatus != 500 || d.State != models.DeliveryPending {
			t.Fatalf("delivery after attempt: %+v", d)
		}

		// 410 on the second webhook deactivates it and ends the delivery.
		gone := &models.DeliveryAttempt{DeliveryID: ds[1].ID, AttemptNumber: 1, RequestURL: "https://two.example", RequestHeaders: "{}",
			ResponseStatus: 410, ErrorClass: models.ErrorClassHTTP, StartedAt: time.Now(), FinishedAt: time.Now()}
		if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: gone, Outcome: models.AttemptOutcome{State: models.DeliveryFailed, DeactivateReason: "410 Gone"}}); err != nil {
			t.Fatal(err)
		}
		w, _ := s.GetWebhook(ctx, "a", ds[1].WebhookID)
		if w.IsActive || w.DeactivatedReason != "410 Gone" {
			t.Fatalf("webhook after 410: %+v", w)
		}

		// Deleting the first webhook cancels its pending delivery; a late
		// attempt result does not resurrect it.
		if err := s.DeleteWebhook(ctx, "a", ds[0].WebhookID); err != nil {
			t.Fatal(err)
		}
		late := &models.DeliveryAttempt{DeliveryID: ds[0].ID, AttemptNumber: 2, RequestURL: "x", RequestHeaders: "{}", ResponseStatus: 200, StartedAt: time.Now(), FinishedAt: time.Now()}
		if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: late, Outcome: models.AttemptOutcome{State: models.DeliverySucceeded}}); err != nil {
			t.Fatal(err)
		}
		d, _ = s.GetDelivery(ctx, ds[0].ID)
		if d.State != models.DeliveryCancelled {
			t.Fatalf("deleted webhook's delivery: state %s, want cancelled", d.State)
		}
		target, err = s.LoadDeliveryTarget(ctx, ds[0].ID)
		if err != nil || target.Webhook.SecretToken != "" || !target.Webhook.DeletedAt.Valid {
			t.Fatalf("deleted webhook target: %+v, %v; want erased secret and deleted_at", target.Webhook, err)
		}

		if evs, err := s.DueEvents(ctx, time.Now().Add(time.Second), 10); err != nil || len(evs) != 1 {
			t.Fatalf("due: got %d, %v; want 1", len(evs), err)
		}
		if err := s.DeferEventStart(ctx, "e1", time.Now().Add(time.Hour), "Temporal is away"); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.DueEvents(ctx, time.Now().Add(time.Second), 10); len(evs) != 0 {
			t.Fatalf("due after a deferred start: %d, want 0", len(evs))
		}
		if evs, _ := s.DueEvents(ctx, time.Now().Add(2*time.Hour), 10); len(evs) != 1 || evs[0].StartAttempts != 1 || evs[0].LastStartError != "Temporal is away" {
			t.Fatalf("deferred event: %+v, want 1 start attempt and its error", evs)
		}
		if n, err := s.UnstartedEvents(ctx); err != nil || n != 1 {
			t.Fatalf("unstarted: %d, %v; want 1", n, err)
		}
		if err := s.MarkEventsStarted(ctx, "e1"); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.DueEvents(ctx, time.Now().Add(2*time.Hour), 10); len(evs) != 0 {
			t.Fatalf("due after mark: %d, want 0", len(evs))
		}
	})
}

func TestAutoDisable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		w, err := s.CreateWebhook(ctx, "a", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr("k")})
		if err != nil {
			t.Fatal(err)
		}
		deliver := func(id string) string {
			if _, _, err := s.CreateEvent(ctx, &models.AssetEvent{ID: id, OrganizationID: "a", AssetID: "v", Payload: []byte(`{}`), WorkflowID: id}); err != nil {
				t.Fatal(err)
			}
			ds, err := s.CreateDeliveries(ctx, id, models.WorkflowRun{})
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries: %v %v", ds, err)
			}
			return ds[0].ID
		}
		attempt := func(deliveryID string, n int, failed bool, at time.Time) {
			a := &models.DeliveryAttempt{DeliveryID: deliveryID, AttemptNumber: n, RequestURL: "x", RequestHeaders: "{}", ResponseStatus: 200, StartedAt: at, FinishedAt: at}
			state := models.DeliverySucceeded
			if failed {
				a.ResponseStatus, a.ErrorClass, state = 500, models.ErrorClassHTTP, models.DeliveryPending
			}
			if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: a, Outcome: models.AttemptOutcome{State: state, DisableAfter: time.Hour}}); err != nil {
				t.Fatal(err)
			}
		}
		active := func() *models.Webhook {
			got, err := s.GetWebhook(ctx, "a", w.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		d1 := deliver("e1")
		attempt(d1, 1, true, time.Now().Add(-30*time.Minute)) // failing for 30 min: still active
		if got := active(); !got.IsActive || got.FailingSince == nil {
			t.Fatalf("after a recent failure: %+v, want active with failing_since", got)
		}
		attempt(d1, 2, false, time.Now()) // a success resets the clock
		if got := active(); got.FailingSince != nil {
			t.Fatalf("after a success: failing_since %v, want nil", got.FailingSince)
		}
		d2 := deliver("e2")
		attempt(d2, 1, true, time.Now().Add(-2*time.Hour)) // failing for 2h > 1h window
		got := active()
		if got.IsActive || !strings.Contains(got.DeactivatedReason, "Disabled automatically") {
			t.Fatalf("after failing past the window: %+v, want auto-disabled", got)
		}
		if d, _ := s.GetDelivery(ctx, d2); d.State != models.DeliveryCancelled {
			t.Fatalf("pending delivery of the disabled webhook: %s, want cancelled", d.State)
		}
		w2, err := s.UpdateWebhook(ctx, "a", w.ID, models.WebhookUpdate{IsActive: ptr(true)})
		if err != nil || !w2.IsActive || w2.FailingSince != nil || w2.DeactivatedReason != "" {
			t.Fatalf("re-enable: %+v %v", w2, err)
		}
	})
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		const secret = "very-secret-value"
		w, err := s.CreateWebhook(ctx, "a", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr(secret)})
		if err != nil || w.SecretToken != secret {
			t.Fatalf("create: %+v %v", w, err)
		}
		stored, err := s.StoredSecret(ctx, w.ID)
		if err != nil || !strings.HasPrefix(stored, "enc:v2:") || strings.Contains(stored, secret) {
			t.Fatalf("stored secret %q (%v): want an enc:v2: ciphertext", stored, err)
		}
		if got, _ := s.GetWebhook(ctx, "a", w.ID); got.SecretToken != secret {
			t.Fatalf("read back %q, want the clear secret", got.SecretToken)
		}
		if _, err := s.UpdateWebhook(ctx, "a", w.ID, models.WebhookUpdate{SecretToken: ptr("rotated")}); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.StoredSecret(ctx, w.ID); again == stored || strings.Contains(again, "rotated") {
			t.Fatalf("updated secret stored as %q", again)
		}
		if err := s.SetSecretKey([]byte("another-key-of-exactly-32-bytes!")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWebhook(ctx, "a", w.ID); err == nil {
			t.Fatal("a wrong key decrypted the secret")
		}
	})
	if _, err := models.ParseSecretKey(models.NewSecretKey()); err != nil {
		t.Fatalf("a new key does not parse: %v", err)
	}
	for _, bad := range []string{"", "short", "c2hvcnQ="} {
		if _, err := models.ParseSecretKey(bad); err == nil {
			t.Errorf("ParseSecretKey(%q) accepted", bad)
		}
	}
}
