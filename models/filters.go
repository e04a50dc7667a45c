package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// KnownStatuses are the asset statuses a webhook can filter on, in their
// canonical spelling (DESIGN §10).
var KnownStatuses = []string{"Not Started", "Queued", "Transcoding", "Completed", "Error", "Streaming", "Recording", "Disconnected", "Stopped"}

// Asset types a webhook can filter on.
const (
	AssetVideo      = "video"
	AssetLivestream = "livestream"
)

// KnownAssetTypes lists the asset types, canonical spelling.
var KnownAssetTypes = []string{AssetVideo, AssetLivestream}

// CanonicalStatus returns the canonical spelling of a known status,
// matched case-insensitively, and whether it is known.
func CanonicalStatus(s string) (string, bool) { return canonical(KnownStatuses, s) }

// CanonicalAssetType returns the canonical spelling of a known asset type.
func CanonicalAssetType(s string) (string, bool) { return canonical(KnownAssetTypes, s) }

func canonical(known []string, s string) (string, bool) {
	for _, k := range known {
		if strings.EqualFold(k, strings.TrimSpace(s)) {
			return k, true
		}
	}
	return "", false
}

// Wants reports whether the webhook's filters let an event of this asset
// status and type through. An empty filter lets everything through; a
// non-empty one only the values it lists, so an event with no (or an
// unknown) status reaches only webhooks without a statuses filter.
func (w *Webhook) Wants(status, assetType string) bool {
	return passes(w.Statuses, status, CanonicalStatus) && passes(w.AssetTypes, assetType, CanonicalAssetType)
}

func passes(filter StringList, v string, canon func(string) (string, bool)) bool {
	if len(filter) == 0 {
		return true
	}
	c, ok := canon(v)
	return ok && slices.Contains(filter, c)
}

// StringList is a list of strings stored as a JSON array in a text column
// ('[]' when empty), the same on PostgreSQL and SQLite.
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan string list from %T", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("scan string list: %w", err)
	}
	*l = out
	return nil
}
