package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/signature"
)

// The temporal-ceiling scenario is the yardstick of every run: the same
// embedded server as the dev mode, one workflow per event whose only work
// is one local activity making the same signed POST to the same receiver,
// and nothing else (no app database, no API, no outbox, no attempt rows).
// What streamhooks costs beyond it is the price of its guarantees.

// ceilingTaskQueue keeps the yardstick's workflows apart from ours.
const ceilingTaskQueue = "streamhooks-bench-ceiling"

// ceilingInput is one yardstick event: where to POST and what.
type ceilingInput struct {
	URL     string
	ID      string
	Payload []byte
}

// ceilingWorkflow makes one signed POST in a local activity.
func ceilingWorkflow(ctx workflow.Context, in ceilingInput) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 20 * time.Second})
	var p *ceilingPoster
	return workflow.ExecuteLocalActivity(ctx, p.Post, in).Get(ctx, nil)
}

// ceilingPoster makes the yardstick's POST with the headers a delivery
// carries (DESIGN §5), through the same kind of client.
type ceilingPoster struct {
	client    *http.Client
	secret    []byte
	userAgent string
}

// Post signs and sends one request; a non-2xx answer is an error, which
// the local activity's default policy retries.
func (p *ceilingPoster) Post(ctx context.Context, in ceilingInput) error {
	ts := time.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL, bytes.NewReader(in.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.userAgent)
	req.Header.Set("x-streams-token", string(p.secret))
	req.Header.Set("webhook-id", in.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", signature.Sign(p.secret, in.ID, ts, in.Payload))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}

// startCeilingWorker registers the yardstick on its own task queue of the
// same client, with the same worker settings as ours.
func startCeilingWorker(c client.Client, p *ceilingPoster, opts worker.Options) (worker.Worker, error) {
	w := worker.New(c, ceilingTaskQueue, opts)
	w.RegisterWorkflowWithOptions(ceilingWorkflow, workflow.RegisterOptions{Name: "BenchCeiling"})
	w.RegisterActivity(p)
	return w, w.Start()
}

// temporalCeiling runs the yardstick: b.cfg.Events workflows started at
// the bench's concurrency, each counted when its POST reaches the receiver.
// Its worker runs for this scenario only.
func (b *bench) temporalCeiling(ctx context.Context, c client.Client, ceiling float64, opts worker.Options) (Result, error) {
	p := &ceilingPoster{client: egress.NewClient(egress.NewGuard(egress.LoopbackCIDRs), nil, activities.DefaultAttemptTimeout),
		secret: []byte(benchSecret), userAgent: "streamhooks/bench"}
	w, err := startCeilingWorker(c, p, opts)
	if err != nil {
		return Result{}, err
	}
	defer w.Stop()
	return b.run(ctx, scenario{name: "temporal-ceiling", hooks: 1, events: b.cfg.Events, noRows: true,
		send: func(org string, accepted []stamp) error {
			var firstErr atomic.Value
			b.parallel(ctx, len(accepted), func(i int) {
				id := fmt.Sprintf("%s-%d", org, i)
				in := ceilingInput{URL: b.recv.url + "/" + org + "/0", ID: id, Payload: assetJSON(id)}
				sent := time.Now()
				_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
					ID: "bench-ceiling-" + id, TaskQueue: ceilingTaskQueue, EnableEagerStart: b.cfg.Eager,
				}, "BenchCeiling", in)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				accepted[i] = stamp{sent: sent, at: time.Now()}
			})
			if err, _ := firstErr.Load().(error); err != nil {
				return err
			}
			return nil
		}}, ceiling)
}
