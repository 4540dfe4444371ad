// Package appliance is the aurorabox supervisor: `up` takes the data dir's
// lock, starts every configured component (zookeeper → master → agent →
// scheduler → observer) as a child process through package supervise,
// publishes the endpoints in <data-dir>/env and <data-dir>/clusters.json, and
// answers `status` and `down` on a unix socket in the data dir.
//
// Data dir layout:
//
//	aurorabox.yaml   optional config file
//	aurorabox.lock   flock held by the running supervisor (contains its pid)
//	aurorabox.sock   control socket (HTTP: GET /v1/status, POST /v1/shutdown,
//	                 POST /v1/restart/<component>)
//	env              shell-sourceable AURORABOX_* endpoints, written when ready
//	clusters.json    Aurora client cluster config, written when ready
//	scheduler/shiro.ini  the scheduler's HTTP basic credential (0600), made
//	                 on the first start unless auth is none
//	task-ports       the task port range `up --ports auto` reserved ("lo-hi"),
//	                 offered again by the next `up`
//	ports            the component ports `up --ports auto` picked (JSON, by
//	                 config key), kept by the next `up` where still free
//	logs/<role>.log  each component's stdout and stderr; logs/aurorabox.log
//	                 is the supervisor's own log when detached
//	<role>/          each component's state (zookeeper/, mesos/, ...)
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// UpOptions are the parts of `up` that tests replace.
type UpOptions struct {
	Exe     string // the aurorabox binary the components run as
	Version string
	Logger  *slog.Logger
	Out     io.Writer // the human summary; nil = discard
	// Components overrides the component list (tests use fake components).
	Components func(cfg *config.Config, exe string) []Component
	// Ready, if set, is called once: with nil when every component is ready,
	// or with the error that made `up` give up.
	Ready func(error)
}

// Up runs the appliance until ctx is cancelled or `down` asks it to stop.
// It returns an error if a component cannot start; what it started is
// stopped again first.
func Up(ctx context.Context, cfg *config.Config, opts UpOptions) (err error) {
	ready := sync.OnceFunc(func() {})
	if opts.Ready != nil {
		defer func() {
			if err != nil {
				opts.Ready(err)
			}
		}()
		ready = sync.OnceFunc(func() { opts.Ready(nil) })
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if opts.Components == nil {
		opts.Components = Components
	}
	begin := time.Now()
	// The supervisor outlives its output: with `up | tee log` and Ctrl-C, or
	// `up | head`, a write to the closed pipe would raise SIGPIPE, which kills
	// a Go program writing to fd 1 or 2 and every component with it. Taking
	// the signal makes such writes fail with EPIPE instead (and, unlike
	// ignoring it, leaves the components' SIGPIPE at its default).
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Path("logs"), 0o700); err != nil {
		return fmt.Errorf("logs dir: %w", err)
	}
	if err := prepareAgentWorkDir(cfg, logger); err != nil {
		return err
	}
	lk, err := acquireLock(cfg.Path("aurorabox.lock"), cfg.DataDir)
	if err != nil {
		return err
	}
	defer lk.release()
	if err := ensureAgentSecret(cfg); err != nil {
		return err
	}
	if err := ensureFrameworkCredential(cfg); err != nil {
		return err
	}

	// What a crashed supervisor left of its components goes; its executors
	// and tasks stay, for the agent to recover from its checkpoints as after
	// an agent restart (it destroys the containers it does not know).
	marker := supervise.Marker(cfg.DataDir)
	if n := supervise.SweepComponents(marker, cfg.ShutdownGrace); n > 0 {
		logger.Warn("killed components left by a previous supervisor", "count", n)
	}
	releasePorts, err := reserveTaskPorts(cfg, logger)
	if err != nil {
		return err
	}
	defer releasePorts()
	if err := resolvePorts(cfg); err != nil {
		return err
	}
	warnings := securityWarnings(cfg)
	if cfg.Auth == config.AuthBasic {
		w, err := ensureCredential(CredentialPath(cfg))
		if err != nil {
			return err
		}
		if w != "" {
			logger.Warn(w)
		}
	}
	for _, w := range warnings {
		logger.Warn(w)
	}
	comps := opts.Components(cfg, opts.Exe)
	specs := make([]supervise.Spec, len(comps))
	for i, c := range comps {
		specs[i] = c.Spec
	}

	sup := supervise.New(supervise.Options{Logger: logger})
	defer func() {
		// Every component but ZooKeeper first, then the task processes
		// (they live outside the components' process groups) while
		// ZooKeeper still runs: their executors leave their ServerSets and
		// close their sessions as they stop, so no member outlives them
		// (into the next up, until its session expired).
		sup.StopExcept("zookeeper")
		var zk []int
		for _, c := range sup.Status() {
			if c.Name == "zookeeper" && c.PID != 0 {
				zk = append(zk, c.PID)
			}
		}
		n := supervise.SweepExcept(marker, cfg.ShutdownGrace, supervise.InGroups(zk))
		sup.Stop()
		if n += supervise.Sweep(marker, cfg.ShutdownGrace); n > 0 {
			logger.Warn("killed leftover processes", "count", n)
		}
		removeContainers(cfg, logger)
	}()

	var isReady atomic.Bool           // set once every component passed its readiness probe
	var iso atomic.Pointer[[2]string] // the agent's isolation mode and reason, once known
	shutdown := make(chan struct{})
	stop := sync.OnceFunc(func() { close(shutdown) })
	current := func() *status.Appliance {
		st := &status.Appliance{
			Version: status.Version, Running: true, Cluster: cfg.Cluster, DataDir: cfg.DataDir,
			Supervisor: &status.Supervisor{
				PID: os.Getpid(), Version: opts.Version, StartedAt: begin,
				UptimeSeconds: time.Since(begin).Seconds(), Ready: isReady.Load(),
			},
			Components: sup.Status(), Auth: cfg.Auth, AllowRootTasks: cfg.AllowRootTasks, Warnings: warnings,
		}
		if cfg.Auth == config.AuthBasic {
			st.Credentials = CredentialPath(cfg)
		}
		st.Healthy = isReady.Load() && allHealthy(st.Components)
		if m := iso.Load(); m != nil {
			st.Isolation, st.IsolationReason = m[0], m[1]
		}
		return st
	}
	ctl, err := startControl(socketPath(cfg), controlHandlers{status: current, shutdown: stop, restart: sup.Restart})
	if err != nil {
		return err
	}
	defer ctl.close()

	logger.Info("starting appliance", "data_dir", cfg.DataDir, "cluster", cfg.Cluster, "components", len(specs))
	if err := sup.Start(ctx, specs); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := writeFileAtomic(cfg.Path("env"), envFile(cfg, comps), 0o600); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	cj, err := clustersJSON(cfg)
	if err == nil {
		err = writeFileAtomic(cfg.Path("clusters.json"), cj, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write clusters.json: %w", err)
	}
	for _, c := range comps {
		if strings.HasPrefix(c.Name, "agent") && c.URL != "" {
			if mode, reason, err := agentIsolation(ctx, c.URL); err == nil {
				iso.Store(&[2]string{mode, reason})
			}
			break
		}
	}
	isReady.Store(true)
	elapsed := time.Since(begin)
	logger.Info("appliance ready", "elapsed", elapsed)
	printSummary(out, cfg, sup.Status(), elapsed)
	for _, w := range warnings {
		fmt.Fprintln(out, "WARNING: "+w)
	}
	ready()

	select {
	case <-ctx.Done():
		logger.Info("shutting down", "reason", "signal")
	case <-shutdown:
		logger.Info("shutting down", "reason", "down requested")
	}
	return nil
}

// securityWarnings are the settings of cfg that weaken its security.
func securityWarnings(cfg *config.Config) []string {
	var out []string
	if cfg.Auth == config.AuthNone {
		out = append(out, fmt.Sprintf("scheduler API authentication is off (auth none): anyone who can reach http://%s can create jobs and run commands on this machine",
			cfg.Addr(cfg.Scheduler.Port)))
	}
	if cfg.AllowRootTasks {
		out = append(out, "tasks may run as root (allow_root_tasks): a job for role root runs its commands as uid 0")
	}
	return out
}

func allHealthy(cs []status.Component) bool {
	for _, c := range cs {
		if c.Health != status.Healthy {
			return false
		}
	}
	return true
}

func printSummary(w io.Writer, cfg *config.Config, cs []status.Component, elapsed time.Duration) {
	fmt.Fprintf(w, "aurorabox: cluster %s is up in %s (data dir %s)\n", cfg.Cluster, elapsed.Round(time.Millisecond), cfg.DataDir)
	printComponents(w, cs)
	fmt.Fprintf(w, "endpoints: %s   clusters.json: %s\n", cfg.Path("env"), cfg.Path("clusters.json"))
	if cfg.Auth == config.AuthBasic {
		fmt.Fprintf(w, "scheduler credentials (HTTP basic, user %s): %s\n", CredentialUser, CredentialPath(cfg))
	}
}

func printComponents(w io.Writer, cs []status.Component) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "  (no components configured)")
		return
	}
	fmt.Fprintf(w, "  %-10s %-22s %-8s %-10s %-10s %s\n", "COMPONENT", "ADDRESS", "PID", "HEALTH", "UPTIME", "RESTARTS")
	for _, c := range cs {
		pid := "-"
		if c.PID != 0 {
			pid = strconv.Itoa(c.PID)
		}
		up := (time.Duration(c.UptimeSeconds * float64(time.Second))).Round(time.Second).String()
		fmt.Fprintf(w, "  %-10s %-22s %-8s %-10s %-10s %d\n", c.Name, c.Address, pid, c.Health, up, c.Restarts)
	}
}

// GetStatus asks the running supervisor for its status. When none is running
// it returns a Status with Running false, and no error.
func GetStatus(ctx context.Context, cfg *config.Config) (*status.Appliance, error) {
	var st status.Appliance
	err := controlDo(ctx, cfg, "GET", "/v1/status", &st)
	if errors.Is(err, ErrNotRunning) {
		return &status.Appliance{Version: status.Version, DataDir: cfg.DataDir, Components: []status.Component{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// PrintStatus writes the human form of st.
func PrintStatus(w io.Writer, st *status.Appliance) {
	if !st.Running {
		fmt.Fprintf(w, "aurorabox: not running (data dir %s)\n", st.DataDir)
		return
	}
	state := "healthy"
	switch {
	case !st.Supervisor.Ready:
		state = "starting"
	case !st.Healthy:
		state = "UNHEALTHY"
	}
	fmt.Fprintf(w, "aurorabox: cluster %s %s; supervisor pid %d, up %s (data dir %s)\n", st.Cluster, state,
		st.Supervisor.PID, time.Duration(st.Supervisor.UptimeSeconds*float64(time.Second)).Round(time.Second), st.DataDir)
	printComponents(w, st.Components)
	if st.Isolation != "" {
		line := "  task isolation: " + st.Isolation
		if st.IsolationReason != "" {
			line += " (" + st.IsolationReason + ")"
		}
		fmt.Fprintln(w, line)
	}
	switch st.Auth {
	case config.AuthBasic:
		fmt.Fprintf(w, "  api auth: basic (credentials %s)\n", st.Credentials)
	case config.AuthNone:
		fmt.Fprintln(w, "  api auth: none")
	}
	for _, warning := range st.Warnings {
		fmt.Fprintln(w, "  WARNING: "+warning)
	}
	for _, c := range st.Components {
		if c.Health != status.Healthy && c.LastError != "" {
			fmt.Fprintf(w, "  %s: %s (log: %s)\n", c.Name, strings.TrimSpace(c.LastError), c.Log)
		}
	}
}
