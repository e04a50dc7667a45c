package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/models"
)

const principalKey = "streamhooks.principal"

// authenticate resolves the Authorization header the way Django REST
// framework's TokenAuthentication does, so TPStreams clients see the same
// answers: a missing header or another scheme is "not provided"; the keyword
// "Token" is case-insensitive.
func (s *Server) authenticate(c *gin.Context) (*models.Principal, error) {
	parts := strings.Fields(c.GetHeader("Authorization"))
	switch {
	case len(parts) == 0 || !strings.EqualFold(parts[0], "token"):
		return nil, detail(http.StatusUnauthorized, msgNotProvided)
	case len(parts) == 1:
		return nil, detail(http.StatusUnauthorized, "Invalid token header. No credentials provided.")
	case len(parts) > 2:
		return nil, detail(http.StatusUnauthorized, "Invalid token header. Token string should not contain spaces.")
	}
	p, err := s.store.Authenticate(c.Request.Context(), parts[1])
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil, detail(http.StatusUnauthorized, msgInvalidToken)
	}
	return p, err
}

// requireOrganization authenticates a customer and checks that the
// organization in the path is the token's. Authentication comes first, so an
// anonymous caller learns nothing about which organizations exist.
func (s *Server) requireOrganization(c *gin.Context) {
	p, err := s.authenticate(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if p.Scope != models.ScopeCustomer || p.OrganizationID != c.Param("org") {
		s.renderError(c, detail(http.StatusNotFound, msgOrgNotFound))
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// requireService authenticates a platform service token.
func (s *Server) requireService(c *gin.Context) {
	p, err := s.authenticate(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if p.Scope != models.ScopeService {
		s.renderError(c, detail(http.StatusForbidden, msgForbidden))
		return
	}
	c.Set(principalKey, p)
	c.Next()
}
