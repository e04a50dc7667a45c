package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// orderingFixture is one organization with a webhook in each delivery
// mode and helpers to accept events of one asset and ask for turns.
type orderingFixture struct {
	t           *testing.T
	s           *models.Store
	latest, all *models.Webhook
}

func newOrderingFixture(t *testing.T, s *models.Store) *orderingFixture {
	modelstest.Org(t, s, "o")
	f := &orderingFixture{t: t, s: s}
	var err error
	if f.latest, err = s.CreateWebhook(context.Background(), "o", models.WebhookUpdate{URL: ptr("https://latest.example"), SecretToken: ptr("k")}); err != nil {
		t.Fatal(err)
	}
	all := models.DeliveryAll
	if f.all, err = s.CreateWebhook(context.Background(), "o", models.WebhookUpdate{URL: ptr("https://all.example"), SecretToken: ptr("k"), DeliveryMode: &all}); err != nil {
		t.Fatal(err)
	}
	if f.latest.DeliveryMode != models.DeliveryLatest || f.all.DeliveryMode != models.DeliveryAll {
		t.Fatalf("modes %q and %q, want latest (the default) and all", f.latest.DeliveryMode, f.all.DeliveryMode)
	}
	return f
}

// accept stores event id of asset and, unless unprepared, its deliveries.
func (f *orderingFixture) accept(id, asset string, prepared bool) {
	f.t.Helper()
	ctx := context.Background()
	if _, _, err := f.s.CreateEvent(ctx, &models.AssetEvent{ID: id, OrganizationID: "o", AssetID: asset, Payload: []byte(`{}`), WorkflowID: "wf-" + id}); err != nil {
		f.t.Fatal(err)
	}
	if prepared {
		if _, err := f.s.CreateDeliveries(ctx, id, models.WorkflowRun{WorkflowID: "wf-" + id}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *orderingFixture) target(event string, w *models.Webhook) *models.DeliveryTarget {
	f.t.Helper()
	t, err := f.s.LoadDeliveryTarget(context.Background(), models.DeliveryID(event, w.ID))
	if err != nil {
		f.t.Fatal(err)
	}
	return t
}

// turn asks for the turn of the delivery of event to w.
func (f *orderingFixture) turn(event string, w *models.Webhook, force bool, lease time.Duration) models.Turn {
	f.t.Helper()
	turns, err := f.s.TakeTurns(context.Background(), []*models.DeliveryTarget{f.target(event, w)}, force, lease)
	if err != nil {
		f.t.Fatal(err)
	}
	return turns[0]
}

// record records attempt n of the delivery of event to w, giving its turn
// back; state pending means "retry at next".
func (f *orderingFixture) record(event string, w *models.Webhook, n int, state models.DeliveryState, next *time.Time) {
	f.t.Helper()
	t := f.target(event, w)
	now := time.Now()
	status := 200
	class := models.ErrorClassNone
	if state != models.DeliverySucceeded {
		status, class = 503, models.ErrorClassHTTP
	}
	rec := models.AttemptRecord{
		Attempt:   &models.DeliveryAttempt{DeliveryID: t.Delivery.ID, AttemptNumber: n, ResponseStatus: status, ErrorClass: class, StartedAt: now, FinishedAt: now},
		Outcome:   models.AttemptOutcome{State: state, NextAttemptAt: next},
		WebhookID: w.ID, AssetID: t.AssetID,
	}
	if err := f.s.RecordAttempt(context.Background(), rec); err != nil {
		f.t.Fatal(err)
	}
}

func (f *orderingFixture) state(event string, w *models.Webhook) (models.DeliveryState, int64) {
	f.t.Helper()
	d, err := f.s.GetDelivery(context.Background(), models.DeliveryID(event, w.ID))
	if err != nil {
		f.t.Fatal(err)
	}
	return d.State, d.SupersededBy
}

func wantVerdict(t *testing.T, what string, got models.Turn, want models.TurnVerdict) {
	t.Helper()
	if got.Verdict != want {
		t.Fatalf("%s: verdict %+v, want %s", what, got, want)
	}
}

const lease = time.Minute

// TestTurnsLatest: in delivery_mode latest one attempt per (webhook,
// asset) is in flight at a time, a newer event's delivery supersedes the
// older ones not yet delivered once it takes its turn, nothing older than
// what was sent goes out again, and a succeeded delivery is never
// superseded (DESIGN §9).
func TestTurnsLatest(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newOrderingFixture(t, s)
		w := f.latest
		f.accept("e1", "v", true)
		wantVerdict(t, "first event", f.turn("e1", w, false, lease), models.TurnGo)
		wantVerdict(t, "the holder again (a retried activity)", f.turn("e1", w, false, lease), models.TurnGo)
		f.accept("e2", "v", true)
		got := f.turn("e2", w, false, lease)
		wantVerdict(t, "newer while the older is in flight", got, models.TurnWait)
		if !got.InFlight || got.Wait <= 0 || got.Wait > lease {
			t.Fatalf("wait behind an attempt in flight: %+v, want InFlight and at most the lease", got)
		}
		// Another asset, and another webhook, do not wait.
		f.accept("x1", "other", true)
		wantVerdict(t, "another asset", f.turn("x1", w, false, lease), models.TurnGo)
		wantVerdict(t, "another webhook (all) for its oldest", f.turn("e1", f.all, false, lease), models.TurnGo)

		// e1 fails and waits for its retry: e2 goes at once and e1 is
		// superseded without another attempt.
		next := time.Now().Add(time.Hour)
		f.record("e1", w, 1, models.DeliveryPending, &next)
		wantVerdict(t, "newer after the older's attempt ended", f.turn("e2", w, false, lease), models.TurnGo)
		if st, by := f.state("e1", w); st != models.DeliverySuperseded || by != 2 {
			t.Fatalf("older delivery: %s by %d, want superseded by 2", st, by)
		}
		wantVerdict(t, "superseded older asks again", f.turn("e1", w, false, lease), models.TurnSettled)

		// e2 succeeds. e3's deliveries come only after e4 was sent (its
		// workflow started late): e3 is older than what was sent, and
		// superseded when it asks.
		f.record("e2", w, 1, models.DeliverySucceeded, nil)
		f.accept("e3", "v", false)
		f.accept("e4", "v", true)
		wantVerdict(t, "e4", f.turn("e4", w, false, lease), models.TurnGo)
		if _, err := s.CreateDeliveries(context.Background(), "e3", models.WorkflowRun{WorkflowID: "wf-e3"}); err != nil {
			t.Fatal(err)
		}
		got = f.turn("e3", w, false, lease)
		if got.Verdict != models.TurnSuperseded || got.SupersededBy != 4 {
			t.Fatalf("older than what was sent: %+v, want superseded by 4", got)
		}
		if st, by := f.state("e3", w); st != models.DeliverySuperseded || by != 4 {
			t.Fatalf("late older delivery: %s by %d, want superseded by 4", st, by)
		}
		if st, _ := f.state("e2", w); st != models.DeliverySucceeded {
			t.Fatalf("succeeded delivery became %s", st)
		}

		// A redelivery of e2 would send the receiver back in time: 409
		// unless forced. A forced one still waits for the attempt in
		// flight (e4's).
		ctx := context.Background()
		_, err := s.ReopenDelivery(ctx, "o", models.DeliveryID("e2", w.ID), models.WorkflowRun{WorkflowID: "re"}, false)
		if models.ErrorCode(err) != models.ECONFLICT || models.ErrorMessage(err) != models.MsgNewerEventSent {
			t.Fatalf("stale redelivery: %v, want ECONFLICT %q", err, models.MsgNewerEventSent)
		}
		if _, err := s.ReopenDelivery(ctx, "o", models.DeliveryID("e2", w.ID), models.WorkflowRun{WorkflowID: "re"}, true); err != nil {
			t.Fatalf("forced redelivery: %v", err)
		}
		wantVerdict(t, "forced, e4 in flight", f.turn("e2", w, true, lease), models.TurnWait)
		f.record("e4", w, 1, models.DeliverySucceeded, nil)
		wantVerdict(t, "forced, after e4", f.turn("e2", w, true, lease), models.TurnGo)
		wantVerdict(t, "not forced, after e4 was sent", f.turn("e2", w, false, lease), models.TurnSuperseded)
	})
}

// TestTurnsAll: in delivery_mode all a newer delivery waits until every
// older one of the asset to the webhook has ended, and until every older
// event has its deliveries; then it goes.
func TestTurnsAll(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newOrderingFixture(t, s)
		w := f.all
		f.accept("e1", "v", true)
		f.accept("e2", "v", true)
		wantVerdict(t, "oldest", f.turn("e1", w, false, lease), models.TurnGo)
		next := time.Now().Add(time.Hour)
		f.record("e1", w, 1, models.DeliveryPending, &next)
		got := f.turn("e2", w, false, lease)
		if got.Verdict != models.TurnWait || got.InFlight || got.Wait < 59*time.Minute {
			t.Fatalf("behind an older delivery waiting for its retry: %+v, want a wait of about an hour", got)
		}
		if st, _ := f.state("e1", w); st != models.DeliveryPending {
			t.Fatalf("all mode superseded the older delivery: %s", st)
		}
		wantVerdict(t, "the older one's retry", f.turn("e1", w, false, lease), models.TurnGo)
		f.record("e1", w, 2, models.DeliveryFailed, nil)
		wantVerdict(t, "after the older one failed for good", f.turn("e2", w, false, lease), models.TurnGo)
		f.record("e2", w, 1, models.DeliverySucceeded, nil)

		// An older event without deliveries yet holds a newer one back.
		f.accept("e3", "v", false)
		f.accept("e4", "v", true)
		wantVerdict(t, "behind an unprepared older event", f.turn("e4", w, false, lease), models.TurnWait)
		if _, err := s.CreateDeliveries(context.Background(), "e3", models.WorkflowRun{WorkflowID: "wf-e3"}); err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, "behind the now prepared e3", f.turn("e4", w, false, lease), models.TurnWait)
		wantVerdict(t, "e3", f.turn("e3", w, false, lease), models.TurnGo)
		f.record("e3", w, 1, models.DeliverySucceeded, nil)
		wantVerdict(t, "e4 last", f.turn("e4", w, false, lease), models.TurnGo)
	})
}

// TestTurnLeaseEnds: a holder whose worker died never gives its turn
// back; once the lease ends another delivery of the (webhook, asset)
// goes, and the dead holder's late record changes no one else's turn.
func TestTurnLeaseEnds(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newOrderingFixture(t, s)
		f.accept("e1", "v", true)
		f.accept("e2", "v", true)
		w := f.all
		wantVerdict(t, "holder with a lease already over", f.turn("e1", w, false, -time.Second), models.TurnGo)
		f.record("e1", w, 1, models.DeliverySucceeded, nil)
		// Another holder now; e1's record above gave back only its own.
		wantVerdict(t, "e2", f.turn("e2", w, false, -time.Second), models.TurnGo)
		f.accept("e3", "v", true)
		f.record("e2", w, 1, models.DeliverySucceeded, nil)
		wantVerdict(t, "e3 after e2", f.turn("e3", w, false, lease), models.TurnGo)

		// Many deliveries of one event in one call, each its own verdict.
		for i := range 5 {
			if _, err := s.CreateWebhook(context.Background(), "o", models.WebhookUpdate{URL: ptr(fmt.Sprintf("https://h%d.example", i)), SecretToken: ptr("k")}); err != nil {
				t.Fatal(err)
			}
		}
		f.accept("e4", "v", true)
		ds, err := s.ListEventDeliveries(context.Background(), "e4")
		if err != nil {
			t.Fatal(err)
		}
		ts, err := s.DeliveryTargets(context.Background(), ds)
		if err != nil {
			t.Fatal(err)
		}
		turns, err := s.TakeTurns(context.Background(), ts, false, lease)
		if err != nil {
			t.Fatal(err)
		}
		for i, tr := range turns {
			want := models.TurnGo
			if ts[i].Webhook.ID == w.ID {
				want = models.TurnWait // e3 is in flight there
			}
			wantVerdict(t, "webhook "+ts[i].Webhook.URL, tr, want)
		}
	})
}
