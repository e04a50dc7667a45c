package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// readObject reads the request body as one JSON object, enforcing the body
// size limit, the content type and UTF-8. An empty body is an empty object,
// as DRF treats it, so missing fields are reported field by field.
func (s *Server) readObject(c *gin.Context) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, detail(http.StatusRequestEntityTooLarge, "Request body is too large: the limit is "+itoa(s.maxBody)+" bytes.")
		}
		return nil, detail(http.StatusBadRequest, "Could not read the request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, detail(http.StatusUnsupportedMediaType, `Unsupported media type "`+ct+`" in request.`)
		}
	}
	if !utf8.Valid(body) {
		return nil, detail(http.StatusBadRequest, "JSON parse error - the body is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, &httpError{status: http.StatusBadRequest, body: fieldErrors{
				"non_field_errors": {"Invalid data. Expected a dictionary, but got " + pythonType(body) + "."},
			}}
		}
		return nil, detail(http.StatusBadRequest, "JSON parse error - "+err.Error())
	}
	if obj == nil { // the body was the literal null
		return nil, &httpError{status: http.StatusBadRequest, body: fieldErrors{
			"non_field_errors": {"Invalid data. Expected a dictionary, but got NoneType."},
		}}
	}
	return obj, nil
}

// pythonType names a JSON value's type the way DRF's message does.
func pythonType(body []byte) string {
	b := bytes.TrimSpace(body)
	switch {
	case len(b) == 0:
		return "NoneType"
	case b[0] == '[':
		return "list"
	case b[0] == '{':
		return "dict"
	case b[0] == '"':
		return "str"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == 'n':
		return "NoneType"
	case bytes.ContainsAny(b, ".eE"):
		return "float"
	}
	return "int"
}

// isNull reports whether a raw JSON value is null.
func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
