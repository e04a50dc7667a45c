package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/devserver"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/models"
)

// The text header of a production-shape run.
const (
	productionShapeLine = "shape: production (api + worker processes, PostgreSQL app database, Temporal on PostgreSQL)"
	machineCPULine      = "cpu s/1k: whole machine (/proc/stat busy time of all cores: user+nice+system+irq+softirq+steal; PostgreSQL and anything else running count); " +
		"rss MB: bench (Temporal server, receiver, load) + api + worker peak RSS (VmHWM) summed, PostgreSQL not counted"
)

// childStopTimeout is how long a role has to exit after SIGTERM before it
// is killed: the api role's graceful HTTP shutdown takes up to 10 s.
const childStopTimeout = 15 * time.Second

// readyTimeout bounds the wait for a role's /readyz.
const readyTimeout = time.Minute

// runProduction is the production shape: a fresh PostgreSQL app database
// and Temporal in two more (persistence, visibility) on the server of
// DATABASE_URL, a Temporal server on them in this process, and the
// binary's own migrate, api and worker roles as child processes with the
// environment they read in production. The scenarios are the dev shape's;
// CPU is counted for the whole machine, since PostgreSQL and the children
// do the work. Every database and child process it made is gone when it
// returns.
func runProduction(ctx context.Context, in Input) (err error) {
	cfg, bc, stdout, stderr := in.Config, in.Options, in.Stdout, in.Stderr
	if cfg.DatabaseURL == "" {
		return fmt.Errorf("%w: --shape production needs DATABASE_URL: a PostgreSQL server (postgres://...) on which the run creates, and at the end drops, its own databases", config.ErrUsage)
	}
	admin, err := url.Parse(cfg.DatabaseURL)
	if err != nil || (admin.Scheme != "postgres" && admin.Scheme != "postgresql") {
		return fmt.Errorf("%w: --shape production needs DATABASE_URL as a postgres:// URL", config.ErrUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the api and worker processes: %w", err)
	}
	dir, err := os.MkdirTemp("", "streamhooks-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	name := fmt.Sprintf("streamhooks_bench_%d_%d", time.Now().Unix(), os.Getpid())
	dbs, err := createDatabases(ctx, admin, name, name+"_temporal", name+"_visibility")
	if err != nil {
		return err
	}
	defer func() {
		if derr := dbs.drop(); derr != nil {
			fmt.Fprintf(stderr, "bench: %v\n", derr)
		}
	}()
	addrs, err := freeAddrs(4) // Temporal frontend, Temporal UI, api, worker /readyz
	if err != nil {
		return err
	}
	et, err := devserver.StartPostgres(devserver.Config{DataDir: dir, FrontendAddr: addrs[0], UIAddr: addrs[1]},
		devserver.Postgres{Persistence: dbs.url(1), Visibility: dbs.url(2)})
	if err != nil {
		return err
	}
	defer et.Stop()

	key := models.NewSecretKey()
	env := roleEnv(os.Environ(), map[string]string{
		config.EnvDatabaseURL:       dbs.url(0),
		config.EnvTemporalAddress:   addrs[0],
		config.EnvTemporalNamespace: devserver.Namespace,
		config.EnvAllowedTargets:    cidrList(egress.LoopbackCIDRs),
		config.EnvSecretKey:         key,
		config.EnvLogLevel:          "warn",
	})
	migrate := exec.CommandContext(ctx, exe, "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("streamhooks migrate: %w\n%s", err, out)
	}
	appCfg := cfg
	appCfg.DatabaseURL, appCfg.SecretKey = dbs.url(0), key
	store, err := roles.OpenStore(ctx, &appCfg, false)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := appCfg.UseSecretKey(store, ""); err != nil {
		return err
	}

	// A role that exits during the run cancels it, with why.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var children []*child
	defer func() {
		for _, c := range slices.Backward(children) {
			if serr := c.stop(childStopTimeout); serr != nil && err == nil {
				err = serr
			}
		}
		if err != nil {
			fmt.Fprint(stderr, "\r\033[K") // the progress line
			for _, c := range children {
				c.dumpStderr(stderr)
			}
		}
	}()
	for _, role := range []struct{ name, addrEnv, addr string }{
		{"worker", config.EnvMetricsAddr, addrs[3]},
		{"api", config.EnvAPIAddr, addrs[2]},
	} {
		c, err := startChild(exe, role.name, append(slices.Clone(env), role.addrEnv+"="+role.addr), cancel)
		if err != nil {
			return err
		}
		c.readyz = "http://" + role.addr + "/readyz"
		children = append(children, c)
	}
	for _, c := range children {
		if err := c.waitReady(runCtx); err != nil {
			return err
		}
	}

	recv := &receiver{first: map[string]time.Time{}}
	recvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv.url = "http://" + recvLn.Addr().String()
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	go func() { _ = roles.ServeHTTP(recvCtx, recvLn, recv, slog.New(slog.DiscardHandler)) }()
	svc, err := store.CreateToken(ctx, models.ScopeService, "")
	if err != nil {
		return err
	}
	pids := []int{children[0].cmd.Process.Pid, children[1].cmd.Process.Pid}
	b := &bench{cfg: bc, store: store, api: "http://" + addrs[2], svc: svc, recv: recv, progress: stderr,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: bc.Concurrency * 2}}, meter: machineMeter{pids: pids}}
	// The api role starts workflows without eager start: that needs a
	// worker in the starting process.
	h := header{shape: ShapeProduction, database: store.Dialect(), eager: false, cpu: "machine", rss: "bench+api+worker",
		lines: []string{productionShapeLine, machineCPULine}}
	var out bytes.Buffer
	err = b.runAll(runCtx, &out, h)
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil {
		return cause // a role exited: its numbers mean nothing
	}
	if err != nil {
		return err
	}
	_, err = io.Copy(stdout, &out)
	return err
}

// roleEnv is the environment of the api and worker processes: this
// process's, less every setting the roles read (so that only the run's
// own apply, as in the dev shape: the activities' default retry schedule
// and timeout), plus set.
func roleEnv(base []string, set map[string]string) []string {
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == config.EnvDatabaseURL || strings.HasPrefix(k, "STREAMHOOKS_") || strings.HasPrefix(k, "TEMPORAL_") {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+set[k])
	}
	return env
}

func cidrList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// freeAddrs returns n loopback addresses free now, for the child
// processes to listen on. The ports come from below Linux's ephemeral
// range (32768-60999 by default): a port the kernel hands out for ":0"
// can be taken by any outgoing connection's local end before the child
// binds it, which failed a run ("address already in use"); ports below
// the range are only ever taken by an explicit listen.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	seen := map[int]bool{}
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no %d free loopback ports in %d-%d", n, lowPortMin, lowPortMax)
		}
		port := lowPortMin + rand.IntN(lowPortMax-lowPortMin)
		if seen[port] {
			continue
		}
		seen[port] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		addrs = append(addrs, ln.Addr().String())
		_ = ln.Close()
	}
	return addrs, nil
}

// The range freeAddrs picks from: below the ephemeral ports.
const (
	lowPortMin = 20000
	lowPortMax = 32000
)

// databases are the run's own PostgreSQL databases, created on the server
// of an admin URL and dropped at the end.
type databases struct {
	admin *sql.DB
	base  url.URL
	names []string
}

func createDatabases(ctx context.Context, admin *url.URL, names ...string) (*databases, error) {
	db, err := sql.Open("pgx", admin.String())
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL at %s: %w", admin.Redacted(), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s (DATABASE_URL): %w", admin.Redacted(), err)
	}
	d := &databases{admin: db, base: *admin}
	for _, name := range names {
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return nil, errors.Join(fmt.Errorf("create database %s: %w", name, err), d.drop())
		}
		d.names = append(d.names, name)
	}
	return d, nil
}

// url is the URL of the i-th database: DATABASE_URL with its name.
func (d *databases) url(i int) string {
	u := d.base
	u.Path, u.RawPath = "/"+d.names[i], ""
	return u.String()
}

// drop drops every database, closing whatever connections remain.
func (d *databases) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, name := range d.names {
		if _, err := d.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", name, err))
		}
	}
	d.names = nil
	return errors.Join(append(errs, d.admin.Close())...)
}

// child is a role of this binary running as a process of its own.
type child struct {
	name     string
	readyz   string // its readiness URL
	cmd      *exec.Cmd
	stderr   *tail
	done     chan struct{}
	err      error // cmd.Wait's, once done is closed
	stopping atomic.Bool
}

// startChild starts "exe role" with env. If it exits before stop,
// onExit gets why.
func startChild(exe, role string, env []string, onExit func(error)) (*child, error) {
	c := &child{name: role, stderr: &tail{max: 64 << 10}, done: make(chan struct{})}
	c.cmd = exec.Command(exe, role)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	// Its own process group, so a ^C reaches the bench, which stops the
	// roles in order; killed if the bench dies (Linux sends Pdeathsig when
	// the starting OS thread ends, which Go threads do only when a
	// goroutine exits locked to one: then the run fails, naming the role).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start streamhooks %s: %w", role, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
		if !c.stopping.Load() {
			onExit(fmt.Errorf("streamhooks %s exited during the run: %v", c.name, c.err))
		}
	}()
	return c, nil
}

// stop sends SIGTERM and waits, killing the process after timeout. It
// reports a role that failed or had to be killed.
func (c *child) stop(timeout time.Duration) error {
	c.stopping.Store(true)
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(timeout):
			_ = c.cmd.Process.Kill()
			<-c.done
			return fmt.Errorf("streamhooks %s did not stop within %s of SIGTERM and was killed", c.name, timeout)
		}
	}
	if c.err != nil {
		return fmt.Errorf("streamhooks %s: %w", c.name, c.err)
	}
	return nil
}

func (c *child) dumpStderr(w io.Writer) {
	if s := c.stderr.String(); s != "" {
		fmt.Fprintf(w, "--- streamhooks %s stderr ---\n%s", c.name, s)
		if !strings.HasSuffix(s, "\n") {
			fmt.Fprintln(w)
		}
	}
}

// waitReady polls the role's /readyz until it answers 200 with every check
// ok (for the api, Temporal too, which it does not require).
func (c *child) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		select {
		case <-c.done:
			return fmt.Errorf("streamhooks %s exited before it was ready: %v", c.name, c.err)
		default:
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		ok, answer := ready(ctx, hc, c.readyz)
		if ok {
			return nil
		}
		last = answer
		if time.Now().After(deadline) {
			return fmt.Errorf("streamhooks %s not ready at %s after %s: %s", c.name, c.readyz, readyTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ready(ctx context.Context, hc *http.Client, readyz string) (bool, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &body) != nil {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	for _, state := range body.Checks {
		if state != "ok" {
			return false, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(raw))
		}
	}
	return true, ""
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// machineMeter counts the whole machine's CPU (/proc/stat) and sums the
// peak RSS of this process and the roles'.
type machineMeter struct{ pids []int }

func (m machineMeter) reset() {
	resetPeakRSS("self")
	for _, pid := range m.pids {
		resetPeakRSS(strconv.Itoa(pid))
	}
}

func (m machineMeter) cpuSeconds() float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	ticks, err := busyTicks(raw)
	if err != nil {
		return 0
	}
	// /proc/stat counts in USER_HZ, 100 per second on every Linux ABI.
	return float64(ticks) / 100
}

func (m machineMeter) peakRSSMB() float64 {
	total := peakRSSMB("self")
	for _, pid := range m.pids {
		total += peakRSSMB(strconv.Itoa(pid))
	}
	return total
}

// busyTicks is the busy time of all cores in /proc/stat's aggregate "cpu"
// line: user+nice+system+irq+softirq+steal (idle and iowait are not busy;
// guest time is already inside user and nice).
func busyTicks(procStat []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(procStat), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 8 {
			return 0, fmt.Errorf("/proc/stat: short cpu line %q", line)
		}
		var total uint64
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system [idle iowait] irq softirq steal
			if i >= len(f) {
				break // a kernel without steal
			}
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i, err)
			}
			total += v
		}
		return total, nil
	}
	return 0, errors.New("/proc/stat: no aggregate cpu line")
}
