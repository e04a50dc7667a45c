package models_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestFilterTable checks Webhook.Wants for every known status against
// every kind of filter, plus unknown and missing statuses and types.
func TestFilterTable(t *testing.T) {
	statuses := append(append([]string{}, models.KnownStatuses...), "", "Foo", "COMPLETED", "not started")
	filters := []models.StringList{nil, {}, {"Completed"}, {"Completed", "Error"}, {"Not Started"}, models.KnownStatuses}
	for _, f := range filters {
		for _, st := range statuses {
			for _, typ := range []string{"", "video", "livestream", "podcast"} {
				for _, tf := range []models.StringList{nil, {"video"}, {"livestream"}, {"video", "livestream"}} {
					w := models.Webhook{Statuses: f, AssetTypes: tf}
					canon, known := models.CanonicalStatus(st)
					wantStatus := len(f) == 0 || (known && slices.Contains(f, canon))
					ct, knownT := models.CanonicalAssetType(typ)
					wantType := len(tf) == 0 || (knownT && slices.Contains(tf, ct))
					if got := w.Wants(st, typ); got != (wantStatus && wantType) {
						t.Errorf("statuses %v, types %v: Wants(%q, %q) = %v", f, tf, st, typ, got)
					}
				}
			}
		}
	}
	// Spot checks that do not restate the rule.
	w := models.Webhook{Statuses: models.StringList{"Completed"}}
	for st, want := range map[string]bool{"Completed": true, "completed": true, " COMPLETED ": true, "Error": false, "": false, "Foo": false} {
		if w.Wants(st, "video") != want {
			t.Errorf("[Completed] Wants(%q) != %v", st, want)
		}
	}
	if !(&models.Webhook{}).Wants("", "") {
		t.Error("a webhook without filters must want an event with no status")
	}
}

// TestFilteredWebhooksGetNoDelivery checks CreateDeliveries on both
// databases: a filtered-out webhook gets no row at all.
func TestFilteredWebhooksGetNoDelivery(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "o")
		mk := func(statuses, types models.StringList) string {
			w, err := s.CreateWebhook(ctx, "o", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr("k"), Statuses: &statuses, AssetTypes: &types})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := s.GetWebhook(ctx, "o", w.ID)
			if !slices.Equal(got.Statuses, statuses) || !slices.Equal(got.AssetTypes, types) {
				t.Fatalf("stored filters %v %v, want %v %v", got.Statuses, got.AssetTypes, statuses, types)
			}
			return w.ID
		}
		all := mk(nil, nil)
		done := mk(models.StringList{"Completed", "Error"}, nil)
		live := mk(nil, models.StringList{"livestream"})
		cases := []struct {
			status, typ string
			want        []string
		}{
			{"Completed", "video", []string{all, done}},
			{"Error", "livestream", []string{all, done, live}},
			{"Queued", "video", []string{all}},
			{"Streaming", "livestream", []string{all, live}},
			{"", "", []string{all}},
			{"Bogus", "video", []string{all}},
		}
		for i, c := range cases {
			id := fmt.Sprintf("ev-%d", i)
			if _, _, err := s.CreateEvent(ctx, &models.AssetEvent{ID: id, OrganizationID: "o", AssetID: "a" + id, AssetStatus: c.status, AssetType: c.typ, Payload: []byte(`{}`), WorkflowID: "wf"}); err != nil {
				t.Fatal(err)
			}
			ds, err := s.CreateDeliveries(ctx, id, models.WorkflowRun{WorkflowID: "wf"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.WebhookID)
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%q/%q: deliveries to %v, want %v", c.status, c.typ, got, want)
			}
		}
	})
}

// TestRotateSecretStore checks the grace window at the store level.
func TestRotateSecretStore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "o")
		w, err := s.CreateWebhook(ctx, "o", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr("old")})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RotateSecret(ctx, "o", w.ID, "new", time.Hour)
		if err != nil || r.SecretToken != "new" || r.PreviousSecretToken != "old" || r.PreviousSecretExpiresAt == nil ||
			time.Until(*r.PreviousSecretExpiresAt) < 59*time.Minute {
			t.Fatalf("rotate: %+v, %v", r, err)
		}
		if r, err = s.RotateSecret(ctx, "o", w.ID, "newer", 0); err != nil || r.PreviousSecretToken != "" || r.PreviousSecretExpiresAt != nil {
			t.Fatalf("rotate without grace: %+v, %v", r, err)
		}
		if _, err = s.RotateSecret(ctx, "o", w.ID, "x", 8*24*time.Hour); models.ErrorCode(err) != models.EINVALID {
			t.Fatalf("grace over 7 days: %v", err)
		}
		_, _ = s.RotateSecret(ctx, "o", w.ID, "n2", time.Hour)
		r, err = s.UpdateWebhook(ctx, "o", w.ID, models.WebhookUpdate{SecretToken: ptr("put")})
		if err != nil || r.SecretToken != "put" || r.PreviousSecretToken != "" {
			t.Fatalf("PATCH of secret_token must end the grace: %+v, %v", r, err)
		}
	})
}

// TestRetention deletes exactly the ended events older than the cutoff,
// with their deliveries and attempts, and nothing pending, unstarted or
// unprepared; a later event of a purged asset keeps counting up.
func TestRetention(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "o")
		w, err := s.CreateWebhook(ctx, "o", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr("k")})
		if err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-40 * 24 * time.Hour).UTC()
		started := old
		type ev struct {
			id       string
			at       time.Time
			started  bool
			prepared bool
			end      models.DeliveryState // "" = leave pending
			gone     bool                 // deleted by retention
		}
		evs := []ev{
			{"old-ok", old, true, true, models.DeliverySucceeded, true},
			{"old-failed", old.Add(time.Second), true, true, models.DeliveryFailed, true},
			{"old-superseded", old.Add(2 * time.Second), true, true, models.DeliverySuperseded, true},
			{"old-pending", old.Add(3 * time.Second), true, true, "", false},
			{"old-unprepared", old.Add(4 * time.Second), true, false, "", false},
			{"old-unstarted", old.Add(5 * time.Second), false, false, "", false},
			{"new-ok", time.Now().UTC(), true, true, models.DeliverySucceeded, false},
		}
		for _, e := range evs {
			row := &models.AssetEvent{ID: e.id, OrganizationID: "o", AssetID: "asset", Payload: []byte(`{}`), WorkflowID: "wf-" + e.id, ReceivedAt: e.at}
			if e.started {
				row.WorkflowStartedAt = &started
			}
			if _, _, err := s.CreateEvent(ctx, row); err != nil {
				t.Fatal(err)
			}
			if !e.prepared {
				continue
			}
			if _, err := s.CreateDeliveries(ctx, e.id, models.WorkflowRun{WorkflowID: "wf-" + e.id}); err != nil {
				t.Fatal(err)
			}
			id := models.DeliveryID(e.id, w.ID)
			at := time.Now().Add(time.Hour)
			if err := s.RecordAttempt(ctx, models.AttemptRecord{Attempt: &models.DeliveryAttempt{DeliveryID: id, AttemptNumber: 1, RequestURL: "u", RequestHeaders: "{}", StartedAt: e.at, FinishedAt: e.at},
				Outcome: models.AttemptOutcome{State: models.DeliveryPending, NextAttemptAt: &at}}); err != nil {
				t.Fatal(err)
			}
			if e.end != "" {
				if err := s.FinishDelivery(ctx, id, e.end); err != nil {
					t.Fatal(err)
				}
			}
		}
		cutoff := time.Now().Add(-30 * 24 * time.Hour)
		total := 0
		for {
			n, err := s.DeleteExpired(ctx, cutoff, 2) // small batches: several rounds
			if err != nil {
				t.Fatal(err)
			}
			total += n
			if n == 0 {
				break
			}
		}
		if total != 3 {
			t.Fatalf("deleted %d events, want 3", total)
		}
		for _, e := range evs {
			_, err := s.GetEvent(ctx, e.id)
			if gone := models.ErrorCode(err) == models.ENOTFOUND; gone != e.gone {
				t.Errorf("event %s: gone = %v, want %v (%v)", e.id, gone, e.gone, err)
			}
			if e.prepared {
				_, err := s.GetDelivery(ctx, models.DeliveryID(e.id, w.ID))
				atts, _ := s.ListAttempts(ctx, models.DeliveryID(e.id, w.ID))
				if gone := models.ErrorCode(err) == models.ENOTFOUND; gone != e.gone || (e.gone && len(atts) != 0) || (!e.gone && len(atts) != 1) {
					t.Errorf("delivery of %s: gone = %v, %d attempts, want gone = %v", e.id, gone, len(atts), e.gone)
				}
			}
		}
		// The asset had 7 events; the next is 8 even though the highest
		// remaining ones could be deleted too.
		if n, err := s.DeleteExpired(ctx, time.Now().Add(time.Hour), 100); err != nil || n != 1 {
			t.Fatalf("delete the rest: %d, %v", n, err)
		}
		got, _, err := s.CreateEvent(ctx, &models.AssetEvent{ID: "after", OrganizationID: "o", AssetID: "asset", Payload: []byte(`{}`), WorkflowID: "wf-after"})
		if err != nil || got.Sequence != 8 {
			t.Fatalf("sequence after retention: %d, %v; want 8", got.Sequence, err)
		}
	})
}
