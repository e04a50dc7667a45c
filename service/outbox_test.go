package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// slowStarter stands in for Temporal while it is slow: every start waits
// until the gate opens, and the starts of each event are counted.
type slowStarter struct {
	gate chan struct{}
	mu   sync.Mutex
	n    map[string]int
}

func (s *slowStarter) StartEvent(ctx context.Context, ev *models.AssetEvent) error {
	s.mu.Lock()
	s.n[ev.ID]++
	s.mu.Unlock()
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestOutboxStartsEachEventOnceWhileStartsLag: while a burst is still being
// started, the scans that run every interval must not queue its events
// again. Each extra start is harmless for delivery (the workflow id
// collapses it) but costs Temporal a start call per scan per event, which
// cost the bench a third of its throughput.
func TestOutboxStartsEachEventOnceWhileStartsLag(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := models.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateOrganization(ctx, "demo", "Demo"); err != nil {
		t.Fatal(err)
	}
	const events = 40
	st := &slowStarter{gate: make(chan struct{}), n: map[string]int{}}
	// The clock runs an hour ahead, so every event is due for the scan at
	// once (as if notifications were lost and starts lag by minutes).
	o := &service.Outbox{Store: store, Starter: st, ScanInterval: 10 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(time.Hour) }}
	for i := range events {
		ev := &models.AssetEvent{ID: fmt.Sprintf("evt-%02d", i), OrganizationID: "demo", AssetID: "vid",
			Payload: []byte(`{"id":"vid"}`)}
		if _, _, err := store.CreateEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		o.Notify(*ev)
	}
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	time.Sleep(500 * time.Millisecond) // ~50 scans while every start hangs
	close(st.gate)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := store.UnstartedEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still not started", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.n) != events {
		t.Fatalf("%d events started, want %d", len(st.n), events)
	}
	for id, n := range st.n {
		if n != 1 {
			t.Errorf("%s started %d times, want once", id, n)
		}
	}
}
