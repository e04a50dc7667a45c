package models

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// Organization owns webhooks and customer tokens. Its ID is the slug that
// appears in API paths.
type Organization struct {
	ID        string `gorm:"primaryKey"`
	Name      string
	CreatedAt time.Time
}

// TableName pins the table name.
func (Organization) TableName() string { return "organizations" }

// orgIDPattern keeps organization ids safe in URLs, logs and workflow ids.
var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// ValidOrganizationID reports whether id may name an organization.
func ValidOrganizationID(id string) bool { return orgIDPattern.MatchString(id) }

// CreateOrganization inserts a new organization.
func (s *Store) CreateOrganization(ctx context.Context, id, name string) (*Organization, error) {
	if !ValidOrganizationID(id) {
		return nil, Errorf(EINVALID, "organization id %q is invalid: use 1-63 letters, digits, '-' or '_', starting with a letter or digit", id)
	}
	org := &Organization{ID: id, Name: name}
	if err := s.db.WithContext(ctx).Create(org).Error; err != nil {
		return nil, fmt.Errorf("create organization %s: %w", id, translate(err, "Organization"))
	}
	return org, nil
}

// GetOrganization loads an organization by id.
func (s *Store) GetOrganization(ctx context.Context, id string) (*Organization, error) {
	var org Organization
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&org).Error; err != nil {
		return nil, fmt.Errorf("get organization %s: %w", id, translate(err, "Organization"))
	}
	return &org, nil
}
