// Package service holds the use cases that the API and the worker share:
// the outbox that starts a workflow for every stored event, and the
// reconciler that resumes deliveries no live workflow drives.
package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// Outbox defaults.
const (
	// DefaultScanInterval is how often the outbox looks for events whose
	// start is due (missed notifications, crashes, failed starts).
	DefaultScanInterval = time.Second
	// DefaultMinAge is how long a new event is left to the notification
	// path before a scan takes it too (a double start is harmless).
	DefaultMinAge = 5 * time.Second
	// startTimeout bounds one workflow start, so an unreachable Temporal
	// holds a starter for seconds, never forever.
	startTimeout = 10 * time.Second
	// maxStartBackoff caps the wait between failed starts of one event.
	maxStartBackoff = 5 * time.Minute
	queueSize       = 4096
	scanBatch       = 500
	starters        = 16
	// markBatch and markDelay bound how many started events one UPDATE
	// marks and how long a start waits to be marked: one statement per
	// burst instead of one per event.
	markBatch = 200
	markDelay = 5 * time.Millisecond
)

// EventStarter starts the workflow of a stored event; *Starter
// implements it. Starting an event twice must be harmless.
type EventStarter interface {
	StartEvent(ctx context.Context, ev *models.AssetEvent) error
}

// Outbox starts the workflow of every stored event, after its row is
// committed: at once for events it is told about (Notify), and by scanning
// for due events, which covers a crash between commit and start, a full
// queue and failed starts. An event whose start fails is deferred with its
// own backoff and reported, so it never blocks the events behind it.
type Outbox struct {
	Store   *models.Store
	Starter EventStarter
	Logger  *slog.Logger
	// ScanInterval and MinAge default to DefaultScanInterval and
	// DefaultMinAge.
	ScanInterval time.Duration
	MinAge       time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	once    sync.Once
	queue   chan models.AssetEvent
	marks   chan string
	started *prometheus.CounterVec

	mu sync.Mutex
	// queued holds the ids in the queue or being started, so a scan that
	// runs while a burst is still being started does not queue them again
	// (a second start is harmless, but it costs Temporal a start call).
	queued map[string]struct{}
	// released maps an id whose start finished to the scan generation
	// current then: a scan that began reading before that may hold the
	// row as it was before it was marked started, and skips it.
	released map[string]uint64
	gen      uint64
	scanning sync.Mutex // one scan at a time, so pruning released is safe
}

// claim marks id as queued; false when it is already, or when a scan of
// generation gen (0: not a scan) may have read the row before its start
// finished.
func (o *Outbox) claim(id string, gen uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.queued[id]; ok {
		return false
	}
	if g, ok := o.released[id]; ok && gen != 0 && g >= gen {
		return false
	}
	o.queued[id] = struct{}{}
	return true
}

func (o *Outbox) release(id string) {
	o.mu.Lock()
	delete(o.queued, id)
	o.released[id] = o.gen
	o.mu.Unlock()
}

// beginScan starts a scan generation and forgets the releases no scan of
// this generation or later can be misled by.
func (o *Outbox) beginScan() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen++
	for id, g := range o.released {
		if g < o.gen {
			delete(o.released, id)
		}
	}
	return o.gen
}

// NewOutbox returns an outbox whose metrics, when reg is not nil, are
// registered there.
func NewOutbox(store *models.Store, starter EventStarter, log *slog.Logger, reg prometheus.Registerer) *Outbox {
	o := &Outbox{Store: store, Starter: starter, Logger: log}
	o.init()
	if reg != nil {
		reg.MustRegister(o.started, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "streamhooks_outbox_events",
			Help: "Stored events whose workflow has not been started yet.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, _ := store.UnstartedEvents(ctx)
			return float64(n)
		}))
	}
	return o
}

func (o *Outbox) init() {
	o.once.Do(func() {
		o.queue = make(chan models.AssetEvent, queueSize)
		o.marks = make(chan string, queueSize)
		o.queued = make(map[string]struct{})
		o.released = make(map[string]uint64)
		o.started = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamhooks_event_starts_total",
			Help: "Workflow starts of stored events, by result (started, failed).",
		}, []string{"result"})
		if o.Logger == nil {
			o.Logger = slog.New(slog.DiscardHandler)
		}
		if o.Now == nil {
			o.Now = time.Now
		}
	})
}

// Notify hands a committed event to the starters without waiting: when
// the queue is full the next scan finds the event instead.
func (o *Outbox) Notify(ev models.AssetEvent) {
	o.init()
	ev.Payload = nil
	if !o.claim(ev.ID, 0) {
		return
	}
	select {
	case o.queue <- ev:
	default:
		o.release(ev.ID)
	}
}

// Run starts events until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	o.init()
	var wg sync.WaitGroup
	for range starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-o.queue:
					if !o.start(ctx, &ev) {
						o.release(ev.ID)
						continue
					}
					select {
					case o.marks <- ev.ID: // released once marked
					case <-ctx.Done():
						o.release(ev.ID) // unmarked: the next run starts it again, a no-op
					}
				}
			}
		}()
	}
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		o.markStarted(ctx)
	}()
	interval := o.ScanInterval
	if interval <= 0 {
		interval = DefaultScanInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := o.Scan(ctx); err != nil && ctx.Err() == nil {
			o.Logger.WarnContext(ctx, "outbox scan failed", "error", err)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			<-marked
			return
		case <-t.C:
		}
	}
}

// Scan queues every event whose start is due, waiting for room in the
// queue, and returns once all are queued.
func (o *Outbox) Scan(ctx context.Context) error {
	o.init()
	minAge := o.MinAge
	if minAge <= 0 {
		minAge = DefaultMinAge
	}
	o.scanning.Lock()
	defer o.scanning.Unlock()
	gen := o.beginScan()
	evs, err := o.Store.DueEvents(ctx, o.Now().Add(-minAge), scanBatch)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if !o.claim(ev.ID, gen) {
			continue // queued already, being started, or started since the read
		}
		select {
		case o.queue <- ev:
		case <-ctx.Done():
			o.release(ev.ID)
			return ctx.Err()
		}
	}
	return nil
}

// StartNow starts one event synchronously and marks it, as the starters
// do (tests and the reconciler use it).
func (o *Outbox) StartNow(ctx context.Context, ev *models.AssetEvent) bool {
	o.init()
	if !o.start(ctx, ev) {
		return false
	}
	o.mark(ctx, []string{ev.ID})
	return true
}

// start starts one event's workflow; a failure defers the row with
// backoff and is logged and counted. The caller marks a started event.
func (o *Outbox) start(ctx context.Context, ev *models.AssetEvent) bool {
	if !workflows.ValidWorkflowID(ev.WorkflowID) {
		// Stored before workflow ids were derived in ASCII.
		id := workflows.WorkflowID(ev.ID)
		if err := o.Store.SetEventWorkflowID(ctx, ev.ID, id); err != nil {
			o.failed(ctx, ev, err)
			return false
		}
		ev.WorkflowID = id
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err := o.Starter.StartEvent(sctx, ev)
	cancel()
	if err != nil {
		o.failed(ctx, ev, err)
		return false
	}
	o.started.WithLabelValues("started").Inc()
	return true
}

// markStarted marks started events in batches, then releases them, until
// ctx ends and the starters have handed over what they started.
func (o *Outbox) markStarted(ctx context.Context) {
	batch := make([]string, 0, markBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		// Marks started events even while shutting down: a lost mark
		// only costs a second (no-op) start.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		o.mark(mctx, batch)
		cancel()
		for _, id := range batch {
			o.release(id)
		}
		batch = batch[:0]
	}
	for {
		select {
		case id := <-o.marks:
			batch = append(batch, id)
			// Gather what else was started meanwhile, briefly.
			deadline := time.After(markDelay)
		gather:
			for len(batch) < markBatch {
				select {
				case id := <-o.marks:
					batch = append(batch, id)
				case <-deadline:
					break gather
				}
			}
			flush()
		case <-ctx.Done():
			// The starters stop at ctx's end; take what they handed over.
			for {
				select {
				case id := <-o.marks:
					batch = append(batch, id)
				case <-time.After(100 * time.Millisecond):
					flush()
					return
				}
			}
		}
	}
}

// mark records events as started. A failed mark is harmless: the next
// scan starts them again, which the workflow id policies turn into a
// no-op, and marks them.
func (o *Outbox) mark(ctx context.Context, ids []string) {
	if err := o.Store.MarkEventsStarted(ctx, ids...); err != nil && ctx.Err() == nil {
		o.Logger.WarnContext(ctx, "mark events started", "events", len(ids), "error", err)
	}
}

func (o *Outbox) failed(ctx context.Context, ev *models.AssetEvent, err error) {
	if ctx.Err() != nil {
		return // shutting down: the row stays due
	}
	o.started.WithLabelValues("failed").Inc()
	backoff := min(time.Second<<min(ev.StartAttempts, 16), maxStartBackoff)
	o.Logger.WarnContext(ctx, "start event workflow failed; deferred", "eventID", ev.ID,
		"attempts", ev.StartAttempts+1, "retryIn", backoff.String(), "error", err)
	if derr := o.Store.DeferEventStart(ctx, ev.ID, o.Now().Add(backoff), err.Error()); derr != nil {
		o.Logger.WarnContext(ctx, "defer event start", "eventID", ev.ID, "error", derr)
	}
}
