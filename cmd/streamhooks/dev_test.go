package main_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models/modelstest"
)

// binary is the streamhooks binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "streamhooks-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "streamhooks")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running streamhooks subprocess with its output captured.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

type devAddrs struct{ api, temporal, ui string }

// startProcess runs the binary with args and extra environment; the test's
// cleanup kills it if it is still running.
func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan error, 1)}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &lockedWriter{mu: &p.mu, w: &p.stdout}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func startDev(t *testing.T, dataDir string, a devAddrs, env ...string) *process {
	t.Helper()
	return startProcess(t, env, "dev", "--data-dir", dataDir, "--api-addr", a.api, "--temporal-addr", a.temporal, "--ui-addr", a.ui)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *process) output() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// waitReady waits for the banner and returns the tokens it prints.
func (p *process) waitReady(t *testing.T) (customer, service string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	re := regexp.MustCompile(`Customer token\s+(\S+)\s+Service token\s+(\S+)`)
	for time.Now().Before(deadline) {
		out, errOut := p.output()
		if m := re.FindStringSubmatch(out); m != nil {
			return m[1], m[2]
		}
		select {
		case err := <-p.done:
			t.Fatalf("dev exited early (%v):\n%s\n%s", err, out, errOut)
		case <-time.After(100 * time.Millisecond):
		}
	}
	out, errOut := p.output()
	t.Fatalf("dev not ready in time:\n%s\n%s", out, errOut)
	return "", ""
}

// stop sends SIGTERM and checks a clean exit within a few seconds.
func (p *process) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			_, errOut := p.output()
			t.Fatalf("dev exited with %v after SIGTERM:\n%s", err, errOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop within 20s of SIGTERM")
	}
	t.Logf("dev stopped in %v", time.Since(start).Round(time.Millisecond))
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	status, _, b := send(method, url, token, body)
	if status == 0 {
		t.Fatalf("%s %s: no answer", method, url)
	}
	return status, string(b)
}

// validSignature checks a Standard Webhooks signature independently of the
// code under test.
func validSignature(secret string, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	return h.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TestDevRoundTripAndRestart runs the real binary: first start, a signed
// delivery to a loopback receiver, the UI, a SIGTERM while a retry is
// pending, and a restart that finishes that delivery.
func TestDevRoundTripAndRestart(t *testing.T) {
	dataDir := t.TempDir()
	addrs := devAddrs{api: freeAddr(t), temporal: freeAddr(t), ui: freeAddr(t)}
	env := []string{"STREAMHOOKS_RETRY_SCHEDULE=4s,4s"}

	const secret = "dev-secret"
	var mu sync.Mutex
	var ids []string
	got := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !validSignature(secret, r.Header, body) {
			t.Errorf("bad signature on %s", r.Header.Get("webhook-id"))
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		n := len(ids)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(503) // the retry will be pending across the restart
		} else {
			w.WriteHeader(200)
		}
		got <- struct{}{}
	}))
	defer recv.Close()

	p := startDev(t, dataDir, addrs, env...)
	customer, service := p.waitReady(t)
	api := "http://" + addrs.api

	if status, body := call(t, "POST", api+"/api/v1/demo/webhooks/", customer, `{"url": "`+recv.URL+`/hook", "secret_token": "`+secret+`"}`); status != 201 {
		t.Fatalf("create webhook: %d %s", status, body)
	}
	if status, body := call(t, "POST", api+"/internal/v1/asset-events/", service, `{"organization_id": "demo", "event_id": "dev-1", "asset": {"id": "v1", "video": {"status": "Completed"}}}`); status != 202 {
		t.Fatalf("signal: %d %s", status, body)
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery reached the receiver")
	}

	resp, err := http.Get("http://" + addrs.ui + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(bytes.ToLower(page), []byte("<html")) {
		t.Fatalf("UI: got %d %s, want 200 HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	p.stop(t) // the second attempt is still waiting on its 4s timer

	p2 := startDev(t, dataDir, addrs, env...)
	customer2, _ := p2.waitReady(t)
	if customer2 != customer {
		t.Fatalf("restart printed another customer token")
	}
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("the pending retry was not delivered after the restart")
	}
	mu.Lock()
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("webhook-ids %v: want two attempts of one delivery", ids)
	}
	mu.Unlock()
	if status, body := call(t, "GET", api+"/api/v1/demo/webhooks/", customer, ""); status != 200 || !strings.Contains(body, `"count":1`) {
		t.Fatalf("webhooks after restart: %d %s", status, body)
	}
	p2.stop(t)
}

// TestDevStartupErrors checks that each startup problem is one clear line
// on stderr and a non-zero exit.
func TestDevStartupErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "streamhooks.db"), bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dataDir string
		api     string
		want    string
		env     string
	}{
		{"API port in use", t.TempDir(), busy.Addr().String(), "API cannot listen on " + busy.Addr().String(), ""},
		{"data dir not creatable", filepath.Join(file, "sub"), freeAddr(t), "data dir " + filepath.Join(file, "sub") + " cannot be created", ""},
		{"corrupt database", corrupt, freeAddr(t), "app database in " + corrupt + " is unusable", ""},
		{"bad log level", t.TempDir(), freeAddr(t), `log level "loud"`, "STREAMHOOKS_LOG_LEVEL=loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, "dev", "--data-dir", tt.dataDir, "--api-addr", tt.api, "--temporal-addr", freeAddr(t), "--ui-addr", freeAddr(t))
			cmd.Env = append(os.Environ(), tt.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit code", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("stderr %q: want one line containing %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestCLITokens covers the admin commands against a dev data dir.
func TestCLITokens(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binary, append(args, "--data-dir", dir)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		out, err := cmd.Output()
		code := 0
		if e, ok := err.(*exec.ExitError); ok {
			code = e.ExitCode()
		}
		return strings.TrimSpace(string(out)), code
	}
	if out, code := run("orgs", "create", "acme", "--name", "Acme"); code != 0 || out != "acme" {
		t.Fatalf("orgs create: %q %d", out, code)
	}
	if _, code := run("orgs", "create", "acme"); code != 1 {
		t.Fatalf("duplicate org: exit %d, want 1", code)
	}
	tok, code := run("tokens", "create", "--org", "acme")
	if code != 0 || !regexp.MustCompile(`^shk_[0-9a-f]{48}$`).MatchString(tok) {
		t.Fatalf("tokens create: %q %d, want the token alone", tok, code)
	}
	if svc, code := run("tokens", "create", "--service"); code != 0 || !strings.HasPrefix(svc, "shk_") || svc == tok {
		t.Fatalf("service token: %q %d", svc, code)
	}
	if _, code := run("tokens", "create"); code != 2 {
		t.Fatalf("tokens create without scope: exit %d, want 2", code)
	}
	if _, code := run("tokens", "revoke", tok); code != 0 {
		t.Fatalf("revoke: exit %d", code)
	}
	if _, code := run("tokens", "revoke", tok); code != 1 {
		t.Fatalf("second revoke: exit %d, want 1", code)
	}
	if out, code := run("migrate"); code != 0 || !strings.Contains(out, "applied 0 migrations") {
		t.Fatalf("migrate on an up-to-date schema: %q %d", out, code)
	}
}

// TestProductionRolesNeedSecretKey: api and worker refuse to start without
// STREAMHOOKS_SECRET_KEY (or with a bad one), with one clear line.
func TestProductionRolesNeedSecretKey(t *testing.T) {
	url := modelstest.NewPostgresDatabase(t)
	mig := exec.Command(binary, "migrate")
	mig.Env = append(os.Environ(), "DATABASE_URL="+url)
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	for _, role := range []string{"api", "worker"} {
		for key, want := range map[string]string{"": "STREAMHOOKS_SECRET_KEY is required", "dG9vLXNob3J0": "STREAMHOOKS_SECRET_KEY: secret key is 9 bytes"} {
			cmd := exec.Command(binary, role)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "STREAMHOOKS_SECRET_KEY="+key, "STREAMHOOKS_API_ADDR=127.0.0.1:0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if e, ok := err.(*exec.ExitError); !ok || e.ExitCode() != 2 || !strings.Contains(stderr.String(), want) {
				t.Errorf("%s with key %q: %v %q, want exit 2 and %q", role, key, err, stderr.String(), want)
			}
		}
	}
}
