package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	_ "time/tzdata" // --cron-timezone takes any IANA zone, with or without a system database

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesoszk"
	"github.com/aurorabox/aurorabox/executor/announcer"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/cron"
	"github.com/aurorabox/aurorabox/scheduler/election"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	"github.com/go-zookeeper/zk"
	"github.com/spf13/cobra"
)

func schedulerCommand() *cobra.Command {
	var listen, masterURL, zkServers, dataDir, hostname, serversetPath, announcerEnsemble, shiroINI, profile, restore, cronTZ string
	var offerHold, failover, reconcile, updateReservation, maintenancePoll time.Duration
	var slaMinInstances int
	var overhead scheduler.Overhead
	var maxTasks, observerPort, maxUpdateFailures, updateHistory int
	timings := map[string]*time.Duration{}
	var enablePreemptor bool
	var offerReservation time.Duration
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the Aurora scheduler (started by up)",
		Long: `Runs the Aurora-compatible scheduler, a Mesos framework named Aurora. With --zk it takes
part in leader election under --serverset-path and, once leading, advertises itself there as a
ServerSet member_ node, where Aurora clients look for it. Until then it answers /leaderhealth with
503 (another scheduler leads) or 502 (none does) and redirects everything else to the leader.

Timing flags are Aurora's (§5.3 and §8.2 of the reference); --timing-profile picks their defaults:
"dev" (no multi-second waits before scheduling, no flapping throttle, preemption by tasks pending
5 s, searched every second) or "aurora" (Aurora's production defaults). A timing flag given
explicitly wins over the profile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.Scheduler.Port)
			}
			if masterURL == "" {
				masterURL = "http://" + cfg.Addr(cfg.Master.Port)
			}
			if dataDir == "" {
				dataDir = cfg.Path("scheduler")
			}
			var tc state.Config
			switch profile {
			case "dev":
				tc = state.DevConfig()
			case "aurora":
				tc = state.AuroraConfig()
			default:
				return &exitError{2, fmt.Errorf("scheduler: --timing-profile %q: want dev or aurora", profile)}
			}
			preemptionDelay, slotSearch := scheduler.DevPreemptionDelay, scheduler.DevPreemptionSlotSearchInterval
			if profile == "aurora" {
				preemptionDelay, slotSearch = scheduler.AuroraPreemptionDelay, scheduler.AuroraPreemptionSlotSearchInterval
			}
			for name, target := range map[string]*time.Duration{"preemption-delay": &preemptionDelay, "preemption-slot-search-interval": &slotSearch} {
				if !cmd.Flags().Changed(name) {
					continue
				}
				if *timings[name] <= 0 {
					return &exitError{2, fmt.Errorf("scheduler: --%s must be positive", name)}
				}
				*target = *timings[name]
			}
			for name, target := range map[string]*time.Duration{
				"transient-task-state-timeout": &tc.TransientTaskStateTimeout, "initial-task-kill-retry-interval": &tc.InitialTaskKillRetryInterval,
				"flapping-task-threshold": &tc.FlappingTaskThreshold, "initial-flapping-task-delay": &tc.InitialFlappingTaskDelay,
				"max-flapping-task-delay": &tc.MaxFlappingTaskDelay, "first-schedule-delay": &tc.FirstScheduleDelay,
				"initial-schedule-penalty": &tc.InitialSchedulePenalty, "max-schedule-penalty": &tc.MaxSchedulePenalty,
				"max-reschedule-task-delay-on-startup": &tc.MaxRescheduleTaskDelayOnStartup,
			} {
				if cmd.Flags().Changed(name) {
					*target = *timings[name]
				}
			}
			if _, err := cron.LoadLocation(cronTZ); err != nil {
				return &exitError{2, fmt.Errorf("scheduler: --cron-timezone: %w", err)}
			}
			var users map[string]string
			if shiroINI != "" {
				if users, err = readUsers(shiroINI); err != nil {
					return &exitError{2, fmt.Errorf("scheduler: --shiro-ini: %w", err)}
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			logger := newLogger()
			host, port, err := net.SplitHostPort(listen)
			if err != nil {
				return &exitError{2, fmt.Errorf("scheduler: --listen: %w", err)}
			}
			if hostname == "" {
				hostname = host
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			// Serve at once; the handler becomes the scheduler's once it leads.
			var handler atomic.Pointer[http.Handler]
			setHandler := func(h http.Handler) { handler.Store(&h) }
			setHandler(scheduler.StandbyHandler(func() (string, bool) { return "", false }))
			errc := make(chan error, 1)
			go func() {
				errc <- serveHTTP(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
			}()
			var lost <-chan struct{}
			if zkServers != "" {
				servers := strings.Split(zkServers, ",")
				setHandler(scheduler.StandbyHandler(leaderFinder(servers, serversetPath)))
				l, err := election.Elect(ctx, servers, serversetPath, hostname, 10*time.Second, logger)
				if err != nil {
					return &exitError{1, fmt.Errorf("scheduler: %w", err)}
				}
				defer l.Resign()
				lost = l.Lost()
			}
			if strings.HasPrefix(masterURL, "zk://") {
				if masterURL, err = detectMaster(ctx, masterURL); err != nil {
					return &exitError{1, fmt.Errorf("scheduler: %w", err)}
				}
			}
			if restore != "" {
				if err := storage.Restore(restore, filepath.Join(dataDir, "scheduler.db")); err != nil {
					return &exitError{1, fmt.Errorf("scheduler: --restore: %w", err)}
				}
				logger.Warn("store restored from a backup", "backup", restore)
			}
			var flags []string
			if announcerEnsemble != "" {
				flags = append(flags, "--announcer-ensemble", announcerEnsemble)
			}
			s, err := scheduler.New(scheduler.Config{
				DisablePreemptor: !enablePreemptor, PreemptionDelay: preemptionDelay, PreemptionSlotSearchInterval: slotSearch, OfferReservation: offerReservation,
				Cluster: cfg.Cluster, ListenAddr: listen, Hostname: hostname, MasterURL: masterURL, DataDir: dataDir,
				ExecutorPath: exe, ExecutorFlags: flags, Logger: logger, BasicAuth: users, Timings: &tc,
				OfferHold: offerHold, FailoverTimeout: failover, ReconcileInterval: reconcile, Overhead: overhead, MaxTasksPerJob: maxTasks,
				ObserverPort: observerPort, MaxUpdateInstanceFailures: maxUpdateFailures, UpdateReservation: updateReservation,
				UpdateHistoryPerJob: updateHistory, CronTimezone: cronTZ, HostMaintenancePollInterval: maintenancePoll,
				SlaMinRequiredInstances: slaMinInstances,
			})
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			defer s.Close()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			setHandler(s.Handler())
			if zkServers != "" {
				// The leader advertises itself where clients look (§8.6).
				p, _ := net.LookupPort("tcp", port)
				ep := fmt.Sprintf(`{"host": %q, "port": %d}`, hostname, p)
				member := fmt.Sprintf(`{"serviceEndpoint": %s, "additionalEndpoints": {"http": %s}, "status": "ALIVE"}`, ep, ep)
				a, err := announcer.Start(ctx, announcer.Config{Servers: strings.Split(zkServers, ","), Path: serversetPath,
					Member: []byte(member), Logger: logger})
				if err != nil {
					return &exitError{1, fmt.Errorf("scheduler: advertise: %w", err)}
				}
				defer a.Stop()
			}
			go s.Run(ctx)
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				if err == nil {
					return nil
				}
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			case <-lost:
				// Another scheduler may lead now: stop at once, as Aurora does.
				return &exitError{1, errors.New("scheduler: lost leadership (ZooKeeper session expired)")}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "API and UI address (default: bind and scheduler.port)")
	f.StringVar(&masterURL, "master", "", "Mesos master: http://host:port or zk://host:port/mesos (default: http://bind:master.port)")
	f.StringVar(&zkServers, "zk", "", "ZooKeeper ensemble (host:port,...) for leader election; empty: no election")
	f.StringVar(&serversetPath, "serverset-path", appliance.SchedulerZKPath, "ZooKeeper path of the election and the ServerSet")
	f.StringVar(&dataDir, "data-dir", "", "the scheduler's store and backups (default: <data-dir>/scheduler)")
	f.StringVar(&hostname, "hostname", "", "host to advertise (default: the listen host)")
	f.StringVar(&shiroINI, "shiro-ini", "", "require HTTP basic auth for mutating API calls, users from this file's [users] section (as Aurora's -shiro_ini)")
	f.StringVar(&announcerEnsemble, "announcer-ensemble", "", "ZooKeeper ensemble passed to executors for task announcements")
	f.StringVar(&restore, "restore", "", "replace the store with this backup (from performBackup) before starting")
	f.StringVar(&profile, "timing-profile", "dev", `defaults of the timing flags: "dev" or "aurora"`)
	aurora := state.AuroraConfig()
	for _, d := range []struct {
		name string
		def  time.Duration
	}{
		{"transient-task-state-timeout", aurora.TransientTaskStateTimeout}, {"initial-task-kill-retry-interval", aurora.InitialTaskKillRetryInterval},
		{"flapping-task-threshold", aurora.FlappingTaskThreshold}, {"initial-flapping-task-delay", aurora.InitialFlappingTaskDelay},
		{"max-flapping-task-delay", aurora.MaxFlappingTaskDelay}, {"first-schedule-delay", aurora.FirstScheduleDelay},
		{"initial-schedule-penalty", aurora.InitialSchedulePenalty}, {"max-schedule-penalty", aurora.MaxSchedulePenalty},
		{"max-reschedule-task-delay-on-startup", aurora.MaxRescheduleTaskDelayOnStartup},
		{"preemption-delay", scheduler.AuroraPreemptionDelay}, {"preemption-slot-search-interval", scheduler.AuroraPreemptionSlotSearchInterval},
	} {
		timings[d.name] = f.Duration(d.name, d.def, "Aurora's -"+strings.ReplaceAll(d.name, "-", "_")+" (default shown: the aurora profile's)")
	}
	f.DurationVar(&offerHold, "min-offer-hold-time", time.Minute, "how long an unused offer is held before it is declined")
	f.BoolVar(&enablePreemptor, "enable-preemptor", true, "let PENDING tasks preempt others (Aurora's -enable_preemptor)")
	f.DurationVar(&offerReservation, "offer-reservation-duration", scheduler.DefaultOfferReservation,
		"how long an agent whose tasks were preempted is kept for the task they were preempted for")
	f.DurationVar(&reconcile, "reconciliation-interval", 5*time.Minute, "how often tasks are reconciled with Mesos (explicitly, then implicitly)")
	f.DurationVar(&failover, "framework-failover-timeout", 21*24*time.Hour, "how long Mesos keeps the framework's tasks while no scheduler is connected")
	f.Float64Var(&overhead.CPUs, "thermos-executor-cpu", 0.01, "cpus added to each task for its executor")
	f.Float64Var(&overhead.MemMB, "thermos-executor-ram", 32, "MB of RAM added to each task for its executor")
	f.IntVar(&maxTasks, "max-tasks-per-job", 4000, "most instances a job may have")
	f.IntVar(&maxUpdateFailures, "max-update-instance-failures", 20000, "most maxPerInstanceFailures × instance count a job update may allow")
	f.IntVar(&updateHistory, "job-update-history-per-job-threshold", 10, "ended job updates kept per job (older ones are forgotten)")
	f.DurationVar(&updateReservation, "update-agent-reservation", 3*time.Minute, "how long a job update keeps an agent for an instance's new task after killing its old one there")
	f.StringVar(&cronTZ, "cron-timezone", cron.DefaultTimezone, "time zone cron schedules are read in: GMT, UTC or an IANA name such as America/New_York")
	f.DurationVar(&maintenancePoll, "host-maintenance-polling-interval", time.Minute, "how often SLA-aware drains (slaDrainHosts) look at their hosts' tasks again")
	f.IntVar(&slaMinInstances, "min-required-instances-for-sla-check", 2,
		"jobs with fewer active tasks are drained without an SLA check (Aurora's default is 20; 2 as in Aurora's vagrant devcluster)")
	f.IntVar(&observerPort, "observer-port", 0, "port of the observers on the agents' hosts, for the UI's links to tasks (0: no links)")
	return cmd
}

// leaderFinder returns the leading scheduler's host:port from the
// ServerSet under path, for a standby's redirects.
func leaderFinder(servers []string, path string) func() (string, bool) {
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return func() (string, bool) { return "", false }
	}
	return func() (string, bool) {
		kids, _, err := conn.Children(path)
		if err != nil {
			return "", false
		}
		sort.Strings(kids)
		for _, k := range kids {
			if !strings.HasPrefix(k, "member_") {
				continue
			}
			data, _, err := conn.Get(path + "/" + k)
			var m announcer.Member
			if err == nil && json.Unmarshal(data, &m) == nil && m.ServiceEndpoint.Host != "" {
				return net.JoinHostPort(m.ServiceEndpoint.Host, strconv.Itoa(m.ServiceEndpoint.Port)), true
			}
		}
		return "", false
	}
}

// detectMaster finds the leading master under a zk:// URL, waiting for one
// for up to a minute.
func detectMaster(ctx context.Context, zkURL string) (string, error) {
	u, err := mesoszk.ParseURL(zkURL)
	if err != nil {
		return "", fmt.Errorf("--master: %w", err)
	}
	conn, _, err := mesoszk.Connect(u, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := mesoszk.Leader(conn, u.Path)
		if err == nil {
			return mesoszk.LeaderURL(info), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("no Mesos master under %s: %w", zkURL, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readUsers reads the [users] section of a Shiro INI file, as Aurora's
// -shiro_ini: lines `name = password[, role...]`. Roles are not used yet:
// every listed user may call every RPC.
func readUsers(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "users" {
			continue
		}
		name, rest, ok := strings.Cut(line, "=")
		pass, _, _ := strings.Cut(rest, ",")
		name, pass = strings.TrimSpace(name), strings.TrimSpace(pass)
		if !ok || name == "" || pass == "" {
			return nil, fmt.Errorf("%s:%d: want `name = password[, roles]` in [users]", path, i+1)
		}
		users[name] = pass
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users in a [users] section", path)
	}
	return users, nil
}
