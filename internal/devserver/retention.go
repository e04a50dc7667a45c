package devserver

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SetRetention sets how long the namespace keeps closed workflows. In
// production an operator sets it once (temporal operator namespace update
// --retention), to the same STREAMHOOKS_RETENTION (docs/operations.md).
func SetRetention(ctx context.Context, c client.Client, retention time.Duration) error {
	_, err := c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: Namespace,
		Config:    &namespace.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(retention)},
	})
	if err != nil {
		return fmt.Errorf("set retention of namespace %s: %w", Namespace, err)
	}
	return nil
}
