package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/commandexec"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/master/allocator"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesoszk"
	"github.com/aurorabox/aurorabox/appliance/mesos/sandboxgc"
	"github.com/aurorabox/aurorabox/appliance/supervise"
	"github.com/aurorabox/aurorabox/appliance/zookeeper"
	"github.com/aurorabox/aurorabox/executor"
	"github.com/spf13/cobra"
)

// roleCommands are the components that `up` runs as child processes. Each
// takes its addresses as flags (what `up` resolved), defaulting to the config.
func roleCommands() []*cobra.Command {
	return []*cobra.Command{zookeeperCommand(), masterCommand(), agentCommand(), commandExecutorCommand(), executorCommand(), schedulerCommand(), observerCommand()}
}

func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

// outliveComponents returns a context that also ends when the supervisor has
// died (supervise.SignalOrphaned, its death signal for ZooKeeper) and the
// other components have stopped, for at most 5 s: they get SIGTERM at the
// same moment and close their ZooKeeper sessions as they stop, which a
// ZooKeeper stopping with them would leave to expire, so that the next start
// would wait for the old scheduler's leadership to time out.
func outliveComponents(ctx context.Context, logger *slog.Logger) context.Context {
	marker, ok := os.LookupEnv(supervise.MarkerVar)
	if !ok {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	orphaned := make(chan os.Signal, 1)
	signal.Notify(orphaned, supervise.SignalOrphaned)
	go func() {
		select {
		case <-ctx.Done():
		case <-orphaned:
			logger.Info("supervisor gone; stopping once the other components have")
			supervise.AwaitComponentsGone(supervise.Marker(marker), 5*time.Second)
		}
		signal.Stop(orphaned)
		cancel()
	}()
	return ctx
}

func zookeeperCommand() *cobra.Command {
	var listen, dataDir string
	var zc zookeeper.Config
	cmd := &cobra.Command{
		Use:   "zookeeper",
		Short: "Run the embedded ZooKeeper server (started by up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.ZooKeeper.Port)
			}
			if dataDir == "" {
				dataDir = cfg.Path("zookeeper")
			}
			zc.ListenAddr, zc.DataDir, zc.Logger = listen, dataDir, newLogger()
			ctx, stop := signalContext(cmd)
			defer stop()
			ctx = outliveComponents(ctx, zc.Logger)
			if err := zookeeper.Run(ctx, zc); err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "client address to listen on (default: bind and zookeeper.port)")
	f.StringVar(&dataDir, "data-dir", "", "where the transaction log and snapshots live (default: <data-dir>/zookeeper)")
	f.DurationVar(&zc.TickTime, "tick-time", 2*time.Second, "ZooKeeper tickTime")
	f.DurationVar(&zc.MinSessionTimeout, "min-session-timeout", 0, "smallest session timeout granted (default: 2 ticks)")
	f.DurationVar(&zc.MaxSessionTimeout, "max-session-timeout", 0, "largest session timeout granted (default: 20 ticks)")
	f.IntVar(&zc.SnapshotCount, "snapshot-count", 100000, "transactions between snapshots")
	return cmd
}

func masterCommand() *cobra.Command {
	var listen, hostname, zkURL, secretFile, weights, credsFile string
	var insecureAgents, authFrameworks, rootSubmissions bool
	var pingTimeout, offerTimeout time.Duration
	var maxPingTimeouts int
	cmd := &cobra.Command{
		Use:   "master",
		Short: "Run the Mesos-compatible master (started by up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.Master.Port)
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("master: %w", err)}
			}
			logger := newLogger()
			w, err := allocator.ParseWeights(weights)
			if err != nil {
				return &exitError{2, fmt.Errorf("master: --weights: %w", err)}
			}
			if offerTimeout < 0 {
				return &exitError{2, fmt.Errorf("master: --offer-timeout %s: must not be negative", offerTimeout)}
			}
			var secret []byte
			if secretFile != "" {
				if secret, err = agentproto.ReadSecret(secretFile); err != nil {
					return &exitError{2, fmt.Errorf("master: --agent-secret-file: %w", err)}
				}
			} else if insecureAgents {
				logger.Warn("--insecure-agents: any local user can act as an agent and forge task updates")
			} else {
				logger.Warn("no --agent-secret-file: every agent will be refused (--insecure-agents accepts any)")
			}
			var creds master.Credentials
			if credsFile != "" {
				if creds, err = master.ReadCredentials(credsFile); err != nil {
					return &exitError{2, fmt.Errorf("master: --credentials: %w", err)}
				}
			}
			mc := master.Config{ListenAddr: ln.Addr().String(), Hostname: hostname, Logger: logger,
				AgentPingTimeout: pingTimeout, MaxAgentPingTimeouts: maxPingTimeouts, OfferTimeout: offerTimeout, Weights: w,
				AgentSecret: secret, InsecureAgents: insecureAgents && secretFile == "", BuildVersion: version,
				Credentials: creds, AuthenticateHTTPFrameworks: authFrameworks, RootSubmissions: rootSubmissions}
			if err := master.ValidateAuthConfig(mc); err != nil {
				return &exitError{2, fmt.Errorf("master: %w", err)}
			}
			if rootSubmissions {
				logger.Warn("--root-submissions: frameworks that did not authenticate may run tasks as root")
			}
			m := master.New(mc)
			if zkURL != "" {
				u, err := mesoszk.ParseURL(zkURL)
				if err != nil {
					return &exitError{2, fmt.Errorf("master: --zk: %w", err)}
				}
				done, err := mesoszk.Register(ctx, u, m.MasterInfo(), logger)
				if err != nil {
					return &exitError{1, fmt.Errorf("master: %w", err)}
				}
				defer func() { <-done }()
			}
			return serveHTTP(ctx, ln, m.Handler())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (default: bind and master.port)")
	cmd.Flags().StringVar(&hostname, "hostname", "", "hostname to advertise (default: the listen host)")
	cmd.Flags().StringVar(&zkURL, "zk", "", "register for master detection under this zk://host:port/path (as mesos-master --zk)")
	cmd.Flags().DurationVar(&pingTimeout, "agent-ping-timeout", 15*time.Second, "how long an agent has to answer a ping (as mesos-master --agent_ping_timeout)")
	cmd.Flags().IntVar(&maxPingTimeouts, "max-agent-ping-timeouts", 5, "unanswered pings in a row after which an agent is taken for disconnected (as mesos-master --max_agent_ping_timeouts)")
	cmd.Flags().DurationVar(&offerTimeout, "offer-timeout", 0, "rescind offers a framework holds longer than this (as mesos-master --offer_timeout); 0: never, Mesos' default (up passes its offer_timeout, 10s)")
	cmd.Flags().StringVar(&weights, "weights", "", `role weights for fair sharing, "role=weight,..." (as mesos-master --weights); a role not listed weighs 1`)
	cmd.Flags().StringVar(&secretFile, "agent-secret-file", "", "file (0600) with the secret agents must present (up writes <data-dir>/agent.secret)")
	cmd.Flags().BoolVar(&insecureAgents, "insecure-agents", false, "without --agent-secret-file, accept any agent (any local user can then forge task updates)")
	cmd.Flags().StringVar(&credsFile, "credentials", "", `file (0600) with the principals and secrets frameworks authenticate with, Mesos' JSON {"credentials":[{"principal":..,"secret":..}]} (as mesos-master --credentials; up writes <data-dir>/framework.credentials)`)
	cmd.Flags().BoolVar(&authFrameworks, "authenticate-http-frameworks", false, "require every framework to authenticate (as mesos-master --authenticate_http_frameworks)")
	cmd.Flags().BoolVar(&rootSubmissions, "root-submissions", false, "let frameworks that did not authenticate run tasks as root (as mesos-master --root_submissions, whose default is true); the operator's opt-in")
	return cmd
}

func agentCommand() *cobra.Command {
	var listen, masterURL, workDir, hostname, res, oversub, attrs, name, secretFile string
	var enableCFS, authExecutors bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Mesos-compatible agent (started by up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.Agent.Port)
			}
			if masterURL == "" {
				masterURL = "http://" + cfg.Addr(cfg.Master.Port)
			}
			if workDir == "" {
				workDir = appliance.AgentWorkDir(cfg)
			}
			resources, err := agent.ParseResources(res)
			if err != nil {
				return &exitError{2, err}
			}
			oversubscribed, err := agent.ParseOversubscribed(oversub)
			if err != nil {
				return &exitError{2, fmt.Errorf("agent: --oversubscribed-resources: %w", err)}
			}
			attributes, err := agent.ParseAttributes(attrs)
			if err != nil {
				return &exitError{2, err}
			}
			var secret []byte
			if secretFile != "" {
				if secret, err = agentproto.ReadSecret(secretFile); err != nil {
					return &exitError{2, fmt.Errorf("agent: --agent-secret-file: %w", err)}
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("agent: %w", err)}
			}
			var extraEnv []string
			if v, ok := os.LookupEnv("AURORABOX_APPLIANCE"); ok {
				extraEnv = append(extraEnv, "AURORABOX_APPLIANCE="+v) // so that `down` finds task processes
			}
			a, err := agent.New(agent.Config{
				ListenAddr: ln.Addr().String(), Hostname: hostname, MasterURL: masterURL, WorkDir: workDir, Name: name,
				Resources: resources, Oversubscribed: oversubscribed, Attributes: attributes, Exe: exe, ExtraEnv: extraEnv, Logger: newLogger(),
				GCDelay: cfg.GCDelay, GCDiskHeadroom: cfg.GCDiskHeadroom, DiskWatchInterval: cfg.DiskWatchInterval, EnableCFS: enableCFS, MasterSecret: secret, AuthenticateExecutors: authExecutors,
				BuildVersion: version,
			})
			if err != nil {
				return &exitError{1, err}
			}
			return a.Run(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address to listen on (default: bind and agent.port)")
	f.StringVar(&masterURL, "master", "", "master URL (default: http://bind:master.port)")
	f.StringVar(&workDir, "work-dir", "", "work dir (default: <data-dir>/mesos)")
	f.StringVar(&hostname, "hostname", "", "hostname to advertise (default: the listen host)")
	f.StringVar(&res, "resources", "", `resources overriding the detected ones by name, e.g. "cpus:4;mem:4096;ports:[31000-32000]"`)
	f.StringVar(&oversub, "oversubscribed-resources", "", `a fixed revocable-resource estimate offered besides --resources, to frameworks that take revocable resources, e.g. "cpus:3" (as Mesos' FixedResourceEstimator)`)
	f.StringVar(&attrs, "attributes", "", `attributes, e.g. "rack:r1;host:h1"`)
	f.StringVar(&name, "name", "", "tells apart agents sharing one work dir (up --agents)")
	f.BoolVar(&authExecutors, "authenticate-http-executors", true, "require each executor's token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN) on the executor API (as mesos-agent --authenticate_http_executors)")
	f.StringVar(&secretFile, "agent-secret-file", "", "file (0600) with the secret the master expects of agents (its --agent-secret-file)")
	f.BoolVar(&enableCFS, "cgroups-enable-cfs", false, "enforce cpus as a CFS quota, not only as cpu shares (Mesos --cgroups_enable_cfs)")
	// The sandbox GC flags are also up's and config keys: loadConfig reads
	// them (or the environment, or the config file) and checks them.
	f.Duration("gc-delay", sandboxgc.DefaultDelay, "how long terminated executors' sandboxes are kept while the disk has room (Mesos --gc_delay)")
	f.Float64("gc-disk-headroom", sandboxgc.DefaultDiskHeadroom, "fraction of the disk (0 to 1) kept free: sandboxes are kept gc-delay × max(0, 1 - headroom - disk usage) (Mesos --gc_disk_headroom)")
	f.Duration("disk-watch-interval", sandboxgc.DefaultDiskWatchInterval, "how often the disk usage is checked and old sandboxes removed (Mesos --disk_watch_interval)")
	return cmd
}

func commandExecutorCommand() *cobra.Command {
	return &cobra.Command{
		Use:    agent.CommandExecutorRole,
		Short:  "The built-in Mesos command executor (launched by the agent)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			if err := commandexec.Run(ctx, newLogger()); err != nil && !errors.Is(err, context.Canceled) {
				return &exitError{1, err}
			}
			return nil
		},
	}
}

func executorCommand() *cobra.Command {
	var cfg executor.Config
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "The Thermos-equivalent executor (launched by the agent, one per Aurora task)",
		Long: `Runs one Aurora task under a Mesos agent: reads the MESOS_* environment, speaks the
v1 executor API, runs the task's processes with Thermos semantics, health-checks and announces it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			cfg.Logger = newLogger()
			if err := executor.Run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
				return &exitError{1, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.AnnouncerEnsemble, "announcer-ensemble", "", "ZooKeeper ensemble (host:port,...) for ServerSet announcements; empty disables them")
	f.StringVar(&cfg.AnnouncerServersetPath, "announcer-serverset-path", "/aurora", "base path of the announcements")
	f.StringVar(&cfg.AnnouncerHostname, "announcer-hostname", "", "host to announce (default: the agent's hostname)")
	f.BoolVar(&cfg.AnnouncerAllowCustomServersetPath, "announcer-allow-custom-serverset-path", false, "let an Announcer's zk_path replace the ServerSet path made from the job key")
	f.BoolVar(&cfg.NoSetuid, "nosetuid", false, "run processes as the executor's user, never as the role's user")
	return cmd
}

// serveHTTP serves h on ln until ctx is done, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
