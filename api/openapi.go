package api

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// OpenAPISpec is the OpenAPI 3 document of every route, in YAML; a test
// validates real responses against it.
//
//go:embed openapi.yaml
var OpenAPISpec []byte

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(OpenAPISpec, &doc); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

func serveOpenAPI(c *gin.Context) {
	body, err := openAPIJSON()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"detail": msgServerError})
		return
	}
	c.Data(http.StatusOK, "application/json", body)
}
