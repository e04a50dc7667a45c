package models_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"gorm.io/gorm/schema"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestEventSequence: every accepted asset event gets a sequence per
// (organization, asset) from 1, strictly increasing in acceptance order,
// also under concurrent signals; a repeated event_id takes no number and
// answers the first one (DESIGN §4, §9).
func TestEventSequence(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		modelstest.Org(t, s, "b")
		accept := func(id, org, asset string) int64 {
			t.Helper()
			ev, _, err := s.CreateEvent(ctx, &models.AssetEvent{ID: id, OrganizationID: org, AssetID: asset, Payload: []byte(`{"id":"` + asset + `"}`)})
			if err != nil {
				t.Fatalf("create %s: %v", id, err)
			}
			return ev.Sequence
		}
		for i, want := range []int64{1, 2, 3} {
			if got := accept(fmt.Sprintf("a-v1-%d", i), "a", "v1"); got != want {
				t.Fatalf("event %d of a/v1: sequence %d, want %d", i, got, want)
			}
		}
		if got := accept("a-v2-0", "a", "v2"); got != 1 {
			t.Fatalf("first event of another asset: sequence %d, want 1", got)
		}
		if got := accept("b-v1-0", "b", "v1"); got != 1 {
			t.Fatalf("same asset id in another organization: sequence %d, want 1", got)
		}
		if got := accept("a-v1-1", "a", "v1"); got != 2 {
			t.Fatalf("repeated event_id: sequence %d, want the first answer 2", got)
		}
		if got := accept("a-v1-3", "a", "v1"); got != 4 {
			t.Fatalf("after a repeat: sequence %d, want 4 (the repeat took no number)", got)
		}
		stored, err := s.GetEvent(ctx, "a-v1-3")
		if err != nil || stored.Sequence != 4 {
			t.Fatalf("stored sequence %v (%v), want 4", stored, err)
		}

		// Concurrent signals of one asset: distinct, gap-free numbers.
		const n = 24
		seqs := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev, _, err := s.CreateEvent(ctx, &models.AssetEvent{ID: fmt.Sprintf("c-%d", i), OrganizationID: "a", AssetID: "hot", Payload: []byte(`{"id":"hot"}`)})
				if err != nil {
					t.Errorf("concurrent create %d: %v", i, err)
					return
				}
				seqs[i] = ev.Sequence
			}()
		}
		wg.Wait()
		slices.Sort(seqs)
		for i, v := range seqs {
			if v != int64(i+1) {
				t.Fatalf("concurrent sequences %v, want 1..%d each once", seqs, n)
			}
		}
	})
}

// TestEventColumnsCoverTheModel: CreateEvent writes its INSERT by hand
// (the sequence is a subquery), so a field added to AssetEvent must be
// added there too, or it would be silently dropped.
func TestEventColumnsCoverTheModel(t *testing.T) {
	sch, err := schema.Parse(&models.AssetEvent{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	got := append(models.EventColumns(), "sequence")
	slices.Sort(got)
	want := slices.Clone(sch.DBNames)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CreateEvent writes %v, the model has %v", got, want)
	}
}
