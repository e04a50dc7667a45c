package api

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
)

// Field limits. URLs longer than browsers and proxies reliably carry are
// refused; secrets are bounded like a Django CharField(max_length=255).
const (
	maxURLLength    = 2048
	maxSecretLength = 255
)

// DRF's messages, reused so clients can match on them.
const (
	msgRequired    = "This field is required."
	msgNull        = "This field may not be null."
	msgBlank       = "This field may not be blank."
	msgNotString   = "Not a valid string."
	msgNotBool     = "Must be a valid boolean."
	msgInvalidURL  = "Enter a valid URL."
	msgControlChar = "This field may not contain control characters (such as CR, LF, tab or NUL)."
)

// stringField reads a string field of a JSON object. It reports whether the
// field was present; problems are added to errs under the field's name.
// Surrounding spaces are trimmed, as DRF's CharField does.
func stringField(obj map[string]json.RawMessage, name string, required bool, errs fieldErrors) (string, bool) {
	raw, ok := obj[name]
	if !ok {
		if required {
			errs.add(name, msgRequired)
		}
		return "", false
	}
	if isNull(raw) {
		errs.add(name, msgNull)
		return "", true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		errs.add(name, msgNotString)
		return "", true
	}
	if hasControl(v) {
		errs.add(name, msgControlChar)
		return "", true
	}
	v = strings.TrimSpace(v)
	if v == "" {
		errs.add(name, msgBlank)
	}
	return v, true
}

// boolField reads an optional JSON boolean.
func boolField(obj map[string]json.RawMessage, name string, errs fieldErrors) (bool, bool) {
	raw, ok := obj[name]
	if !ok {
		return false, false
	}
	var v bool
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		errs.add(name, msgNotBool)
		return false, true
	}
	return v, true
}

// hasControl reports whether s holds a control character (C0, DEL or C1),
// which could split headers or logs.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// maxLength adds DRF's length message when v is too long.
func maxLength(v, name string, limit int, errs fieldErrors) bool {
	if utf8.RuneCountInString(v) > limit {
		errs.add(name, "Ensure this field has no more than "+strconv.Itoa(limit)+" characters.")
		return false
	}
	return true
}

// validWebhookURL accepts absolute http(s) URLs with a plausible host, in
// the spirit of Django's URLValidator.
func validWebhookURL(raw string) bool {
	if strings.ContainsAny(raw, " \\") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return false
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return false
	}
	host := u.Hostname()
	if host == "" {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return false
	}
	if strings.Contains(u.Host, "[") {
		return net.ParseIP(host) != nil // bracketed hosts must be IPv6 literals
	}
	// Judge the name net/http will look up: "ｅｘａｍｐｌｅ．ｃｏｍ" is example.com.
	return validHostname(egress.DialHost(host))
}

// validHostname checks DNS label syntax (letters of any script, digits and
// hyphens; labels of 1-63 characters, no leading or trailing hyphen).
func validHostname(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	return true
}

// choiceListField reads an optional JSON list of choices, matched by
// canon (case-insensitively), into their canonical spellings without
// repeats, as DRF's MultipleChoiceField answers: `"Foo" is not a valid
// choice.` for each unknown value.
func choiceListField(obj map[string]json.RawMessage, name string, canon func(string) (string, bool), errs fieldErrors) (models.StringList, bool) {
	raw, ok := obj[name]
	if !ok {
		return nil, false
	}
	if isNull(raw) {
		errs.add(name, msgNull)
		return nil, true
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		errs.add(name, `Expected a list of items but got type "`+pythonType(raw)+`".`)
		return nil, true
	}
	out := models.StringList{}
	for _, item := range items {
		var v string
		if json.Unmarshal(item, &v) != nil {
			errs.add(name, `"`+strings.Trim(string(item), `"`)+`" is not a valid choice.`)
			continue
		}
		c, known := canon(v)
		if !known {
			errs.add(name, strconv.Quote(v)+" is not a valid choice.")
			continue
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, true
}
