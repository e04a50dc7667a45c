package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/activities"
)

// Search attribute keys that make deliveries findable in Temporal UI, e.g.
// OrganizationId="demo" AND AssetId="vid_1".
var (
	OrganizationIDKey = temporal.NewSearchAttributeKeyKeyword("OrganizationId")
	AssetIDKey        = temporal.NewSearchAttributeKeyKeyword("AssetId")
	AssetStatusKey    = temporal.NewSearchAttributeKeyKeyword("AssetStatus")
	WebhookIDKey      = temporal.NewSearchAttributeKeyKeyword("WebhookId")
)

// SearchAttributeKeys lists the custom search attributes the starter sets.
// It is the one list every registration uses: service.EnsureSearchAttributes
// and the embedded dev server's namespace (internal/devserver).
func SearchAttributeKeys() []temporal.SearchAttributeKeyKeyword {
	return []temporal.SearchAttributeKeyKeyword{OrganizationIDKey, AssetIDKey, AssetStatusKey, WebhookIDKey}
}

// SearchAttributeTypes maps each of SearchAttributeKeys to its indexed
// type, the form a namespace registers them in.
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	types := map[string]enumspb.IndexedValueType{}
	for _, k := range SearchAttributeKeys() {
		types[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return types
}

// RedeliveryID is the workflow id of the redelivery that starts with
// attempt number firstAttempt, so a repeated request collapses.
func RedeliveryID(deliveryID string, firstAttempt int) string {
	return activities.RedeliveryID(deliveryID, firstAttempt)
}

// RecoveryWorkflowID is the workflow id of a bulk recovery.
func RecoveryWorkflowID(recoveryID string) string { return "recover:" + recoveryID }

// IsRedeliveryOf reports whether workflowID is a redelivery of deliveryID.
func IsRedeliveryOf(workflowID, deliveryID string) bool {
	return strings.HasPrefix(workflowID, "redeliver:"+deliveryID+":")
}

// WorkflowID is the id of the workflow that delivers an event. Temporal
// carries workflow ids in gRPC headers, which take printable ASCII only, so
// an id with anything else (accents, CJK, emoji, right-to-left text) is
// derived: "asset-event-u:" and the id percent-encoded, cut at
// maxReadableID characters with a hash of the whole id, so distinct event
// ids never share a workflow. ASCII ids keep "asset-event:<id>", the form
// every released version used.
func WorkflowID(eventID string) string {
	if printableASCII(eventID) {
		return "asset-event:" + eventID
	}
	enc := url.PathEscape(eventID)
	if len(enc) > maxReadableID {
		cut := maxReadableID
		if i := strings.LastIndexByte(enc[:cut], '%'); i >= cut-2 {
			cut = i // never split a %XX escape
		}
		sum := sha256.Sum256([]byte(eventID))
		enc = enc[:cut] + "~" + hex.EncodeToString(sum[:12])
	}
	return "asset-event-u:" + enc
}

// maxReadableID bounds the readable part of a derived workflow id (Temporal
// refuses ids over 1,000 bytes).
const maxReadableID = 400

// printableASCII reports whether s is non-empty printable ASCII, all a
// gRPC header value may hold.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// ValidWorkflowID reports whether id can travel as a workflow id: a row
// stored before ids were derived may hold one that cannot.
func ValidWorkflowID(id string) bool { return printableASCII(id) }
