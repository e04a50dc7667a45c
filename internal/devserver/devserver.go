// Package devserver runs a Temporal server (frontend, history, matching,
// worker) persisted in one SQLite file, plus the Temporal Web UI, inside the
// streamhooks process: the dev mode and the bench use it so that nothing
// but the binary is needed.
package devserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/google/uuid"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	tconfig "go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/streamhooks/streamhooks/workflows"
)

// Namespace is the namespace the server creates and the dev mode uses.
const Namespace = "default"

// devClusterName names the single cluster of the embedded server.
const devClusterName = "active"

// Server is a running Temporal server and Web UI.
type Server struct {
	server temporal.Server
	ui     *uiserver.Server
}

// Config locates the server. The error messages name the addresses by the
// dev mode's flags (--temporal-addr, --ui-addr), which set them.
type Config struct {
	DataDir      string
	FrontendAddr string // host:port of the gRPC frontend
	UIAddr       string // host:port of the Web UI
}

// Start sets up the SQLite schema and namespace on first
// start and starts the server and UI. A restart on the same file keeps
// every workflow, which resume where they were.
func Start(cfg Config) (*Server, error) {
	addrs, err := cfg.addrs()
	if err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.DataDir, "temporal.db")
	sqlConf := tconfig.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			"mode": "rwc", "journal_mode": "wal", "synchronous": "normal", "busy_timeout": "10000",
		},
		MaxConns: 1, MaxIdleConns: 1,
	}
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(&sqlConf); err != nil {
			_ = os.Remove(dbPath) // never leave a half-made schema for the next start
			return nil, fmt.Errorf("create Temporal database %s: %w", dbPath, err)
		}
	}
	// The namespace is created with the search attributes the workflow
	// starter sets, so operators can filter deliveries in Temporal UI.
	ns, err := sqliteschema.NewNamespaceConfig(devClusterName, Namespace, false, workflows.SearchAttributeTypes())
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(&sqlConf, ns); err != nil {
		return nil, fmt.Errorf("open Temporal database %s (delete it to start afresh): %w", dbPath, err)
	}

	const store = "sqlite-default"
	return start(cfg, addrs, tconfig.Persistence{
		DefaultStore: store, VisibilityStore: store, NumHistoryShards: 1,
		DataStores: map[string]tconfig.DataStore{store: {SQL: &sqlConf}},
	})
}

// listenAddrs are a Config's addresses, parsed.
type listenAddrs struct {
	feHost, uiHost string
	fePort, uiPort int
}

// addrs parses the addresses; the errors name them by the dev mode's
// flags.
func (cfg Config) addrs() (listenAddrs, error) {
	var a listenAddrs
	var err error
	if a.feHost, a.fePort, err = splitHostPort(cfg.FrontendAddr); err != nil {
		return a, fmt.Errorf("--temporal-addr %q: %w", cfg.FrontendAddr, err)
	}
	if a.uiHost, a.uiPort, err = splitHostPort(cfg.UIAddr); err != nil {
		return a, fmt.Errorf("--ui-addr %q: %w", cfg.UIAddr, err)
	}
	return a, nil
}

// start builds and starts a server on the given stores (the cluster,
// services and dynamic config are the same whatever the stores), and the
// Web UI.
func start(cfg Config, a listenAddrs, stores tconfig.Persistence) (*Server, error) {
	ports, err := freePorts(a.feHost, 3)
	if err != nil {
		return nil, err
	}
	conf := serverConfig(stores, a.feHost, a.fePort, ports)
	logger := tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: "warn", Format: "json", OutputFile: filepath.Join(cfg.DataDir, "temporal.log")}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(net.JoinHostPort(a.feHost, strconv.Itoa(a.fePort))),
		primitives.HistoryService:  static.SingleLocalHost(net.JoinHostPort(a.feHost, strconv.Itoa(ports[0]))),
		primitives.MatchingService: static.SingleLocalHost(net.JoinHostPort(a.feHost, strconv.Itoa(ports[1]))),
		primitives.WorkerService:   static.SingleLocalHost(net.JoinHostPort(a.feHost, strconv.Itoa(ports[2]))),
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*tconfig.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(devDynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("build Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server on %s: %w", cfg.FrontendAddr, err)
	}
	ui := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host: a.uiHost, Port: a.uiPort, TemporalGRPCAddress: cfg.FrontendAddr, EnableUI: true,
		DefaultNamespace: Namespace, HideLogs: true, DisableNewsFetch: true,
		CORS: uiconfig.CORS{CookieInsecure: true},
	}))
	go func() { _ = ui.Start() }() // the UI port was checked free before
	return &Server{server: srv, ui: ui}, nil
}

// Stop stops the UI and the server.
func (e *Server) Stop() error {
	e.ui.Stop()
	return e.server.Stop()
}

func serverConfig(stores tconfig.Persistence, host string, fePort int, ports []int) *tconfig.Config {
	conf := &tconfig.Config{}
	conf.Global.Membership = tconfig.Membership{MaxJoinDuration: 30e9, BroadcastAddress: host}
	conf.Persistence = stores
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace: false, FailoverVersionIncrement: 10,
		MasterClusterName: devClusterName, CurrentClusterName: devClusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{devClusterName: {
			Enabled: true, InitialFailoverVersion: 1, ClusterID: uuid.NewString(),
			RPCAddress: net.JoinHostPort(host, strconv.Itoa(fePort)),
		}},
	}
	conf.DCRedirectionPolicy = tconfig.DCRedirectionPolicy{Policy: "noop"}
	conf.Services = map[string]tconfig.Service{
		"frontend": {RPC: tconfig.RPC{GRPCPort: fePort, BindOnIP: host}},
		"history":  {RPC: tconfig.RPC{GRPCPort: ports[0], BindOnIP: host}},
		"matching": {RPC: tconfig.RPC{GRPCPort: ports[1], BindOnIP: host}},
		"worker":   {RPC: tconfig.RPC{GRPCPort: ports[2], BindOnIP: host}},
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort(host, strconv.Itoa(fePort))
	return conf
}

// devDynamicConfig tunes the embedded server for one laptop process. The
// mutable-state cache holds 128 workflows instead of 8096: most delivery
// workflows finish within one workflow task, the rest (waiting on a retry
// timer) reload from SQLite when the timer fires, and the bench's peak RSS
// falls from ~390/500/900 MB to ~330/360/390 MB at the same throughput
// (docs/benchmarks.md).
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 128,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.FrontendPersistenceMaxQPS.Key():                    10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                     45000,
		dynamicconfig.MatchingPersistenceMaxQPS.Key():                    45000,
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// freePorts asks the kernel for n free ports on host for the internal
// services (history, matching, worker).
func freePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
