package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Token scopes: customers manage their organization's webhooks; platform
// services signal asset events.
const (
	ScopeCustomer = "customer"
	ScopeService  = "service"
)

// tokenPrefix makes streamhooks tokens recognisable to secret scanners.
const tokenPrefix = "shk_"

// APIToken is a stored token: only its SHA-256 hash and a short prefix (for
// operators to tell tokens apart) are kept.
type APIToken struct {
	ID             int64 `gorm:"primaryKey"`
	TokenHash      string
	Prefix         string
	Scope          string
	OrganizationID *string
	CreatedAt      time.Time
	RevokedAt      *time.Time
}

// TableName pins the table name.
func (APIToken) TableName() string { return "api_tokens" }

// Principal is who an authenticated request acts as.
type Principal struct {
	TokenID        int64
	Scope          string
	OrganizationID string // empty for service tokens
}

// hashToken returns the hex SHA-256 of a token. Tokens carry 192 random
// bits, so a fast hash is enough: there is nothing to brute-force.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a new token of the given scope and returns it in clear;
// this is the only time the clear token exists. orgID is required for
// customer tokens and must be empty for service tokens.
func (s *Store) CreateToken(ctx context.Context, scope, orgID string) (string, error) {
	switch {
	case scope == ScopeCustomer && orgID == "":
		return "", Errorf(EINVALID, "a customer token needs an organization")
	case scope == ScopeService && orgID != "":
		return "", Errorf(EINVALID, "a service token belongs to no organization")
	case scope != ScopeCustomer && scope != ScopeService:
		return "", Errorf(EINVALID, "unknown token scope %q", scope)
	}
	if scope == ScopeCustomer {
		if _, err := s.GetOrganization(ctx, orgID); err != nil {
			return "", err
		}
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	token := tokenPrefix + hex.EncodeToString(raw[:])
	row := &APIToken{TokenHash: hashToken(token), Prefix: token[:len(tokenPrefix)+6], Scope: scope}
	if orgID != "" {
		row.OrganizationID = &orgID
	}
	if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
		return "", fmt.Errorf("create token: %w", translate(err, "Token"))
	}
	return token, nil
}

// Authenticate returns the principal of a live token, or ENOTFOUND when the
// token is unknown or revoked.
func (s *Store) Authenticate(ctx context.Context, token string) (*Principal, error) {
	var row APIToken
	err := s.db.WithContext(ctx).Where("token_hash = ? AND revoked_at IS NULL", hashToken(token)).Take(&row).Error
	if err != nil {
		return nil, translate(err, "Token")
	}
	p := &Principal{TokenID: row.ID, Scope: row.Scope}
	if row.OrganizationID != nil {
		p.OrganizationID = *row.OrganizationID
	}
	return p, nil
}

// RevokeToken revokes a token given in clear. Revoking an unknown or already
// revoked token is ENOTFOUND so a typo is not mistaken for success.
func (s *Store) RevokeToken(ctx context.Context, token string) error {
	res := s.db.WithContext(ctx).Model(&APIToken{}).
		Where("token_hash = ? AND revoked_at IS NULL", hashToken(token)).
		Update("revoked_at", now())
	if res.Error != nil {
		return fmt.Errorf("revoke token: %w", translate(res.Error, "Token"))
	}
	if res.RowsAffected == 0 {
		return Errorf(ENOTFOUND, "Token not found or already revoked.")
	}
	return nil
}
