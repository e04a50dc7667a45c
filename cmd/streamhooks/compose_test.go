package main_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeMatchesCode keeps docker-compose.yml (which cannot run here:
// no Docker engine) consistent with the binary: the services exist, the
// roles are real commands, and every variable it sets is one the code reads.
func TestComposeMatchesCode(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "migrate", "api", "worker"} {
		if _, ok := doc.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	var src strings.Builder
	// The variables are all declared in internal/config; the roles in main.go.
	for _, f := range []string{"../../internal/config/config.go", "main.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	known := regexp.MustCompile(`"((?:STREAMHOOKS|TEMPORAL|DATABASE)_[A-Z_]+)"`).FindAllStringSubmatch(src.String(), -1)
	var vars []string
	for _, m := range known {
		vars = append(vars, m[1])
	}
	for _, role := range []string{"migrate", "api", "worker"} {
		svc := doc.Services[role]
		if svc.Image != "streamhooks:local" || len(svc.Command) != 1 || svc.Command[0] != role {
			t.Errorf("service %s: image %q command %v, want streamhooks:local %s", role, svc.Image, svc.Command, role)
		}
		if !strings.Contains(src.String(), `case "`+role+`":`) {
			t.Errorf("role %s is not a command of the binary", role)
		}
		for k := range svc.Environment {
			if !slices.Contains(vars, k) {
				t.Errorf("service %s sets %s, which the code never reads", role, k)
			}
		}
		if svc.Environment["DATABASE_URL"] == "" {
			t.Errorf("service %s has no DATABASE_URL", role)
		}
	}
}
