package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/workflows"
)

// RetentionEvery is how often the retention schedule runs.
const RetentionEvery = time.Hour

// EnsureRetentionSchedule creates the Temporal Schedule
// streamhooks-retention (DESIGN §10), which starts the Retention workflow
// every RetentionEvery, or points the existing one at this retention, so
// the last worker started decides it. Overlapping runs are skipped: one
// purge at a time.
func (s *Starter) EnsureRetentionSchedule(ctx context.Context, retention time.Duration) error {
	action := &client.ScheduleWorkflowAction{
		ID: "streamhooks-retention-run", Workflow: workflows.Retention, TaskQueue: s.taskQueue(),
		Args:          []any{workflows.RetentionInput{Retention: retention}},
		StaticSummary: "Delete ended events older than " + retention.String(),
	}
	sc := s.Client.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:      workflows.RetentionScheduleID,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: RetentionEvery}}},
		Action:  action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    "streamhooks: deletes events older than STREAMHOOKS_RETENTION whose deliveries have all ended",
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("create schedule %s: %w", workflows.RetentionScheduleID, err)
		}
		if err == nil {
			return nil
		}
	}
	err = sc.GetHandle(ctx, workflows.RetentionScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			in.Description.Schedule.Action = action
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", workflows.RetentionScheduleID, err)
	}
	return nil
}
