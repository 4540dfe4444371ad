package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // --cron-timezone takes any IANA zone, with or without a system database

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/cron"
	"github.com/aurorabox/aurorabox/scheduler/server"
	"github.com/aurorabox/aurorabox/scheduler/shiro"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/spf13/cobra"
)

func schedulerCommand() *cobra.Command {
	var listen, masterURL, zkServers, dataDir, hostname, serversetPath, announcerEnsemble, shiroINI, profile, restore, cronTZ, fwAuthFile string
	var announcePrincipal bool
	var failover, updateReservation, maintenancePoll time.Duration
	var maxTasks, observerPort, maxUpdateFailures, updateHistory int
	var enablePreemptor, allowRootTasks, allowDockerParameters bool
	var offerReservation time.Duration
	var knobs *schedulerKnobs
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the Aurora scheduler (started by up)",
		Long: `Runs the Aurora-compatible scheduler, a Mesos framework named Aurora. With --zk it takes
part in leader election under --serverset-path; once leading and registered with Mesos (Aurora's
ACTIVE) it advertises itself there as a ServerSet member_ node, where Aurora clients look for it.
Until then it answers /leaderhealth with 503 (another scheduler is advertised) or 502 (none is), and
while standing by it redirects everything else to the leader.

Timing flags are Aurora's (§5.3 and §8.2 of the reference); --timing-profile picks their defaults:
"dev" (no multi-second waits before scheduling, flapping tasks throttled 1 s doubling to 30 s, no
scheduling rate limit to speak of, preemption by tasks pending 5 s, searched every second,
reconciliation at registration and every 5 min, partition aware, a 0.01 cpu / 32 MB executor
overhead) or "aurora" (Aurora 0.11's production defaults, 0.25 cpu / 128 MB executor overhead). A timing flag given
explicitly wins over the profile. --reconciliation-interval sets both reconciliation intervals.`,
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
			if err := knobs.resolve(cmd, profile); err != nil {
				return &exitError{2, fmt.Errorf("scheduler: %w", err)}
			}
			sc, tc := knobs.sc, knobs.tc
			if _, err := cron.LoadLocation(cronTZ); err != nil {
				return &exitError{2, fmt.Errorf("scheduler: --cron-timezone: %w", err)}
			}
			var users map[string]string
			if shiroINI != "" {
				if users, err = readUsers(shiroINI); err != nil {
					return &exitError{2, fmt.Errorf("scheduler: --shiro-ini: %w", err)}
				}
			}
			var fwCred *scheduler.FrameworkCredential
			if fwAuthFile != "" {
				c, err := scheduler.ReadFrameworkAuthenticationFile(fwAuthFile)
				if err != nil {
					return &exitError{2, fmt.Errorf("scheduler: --framework-authentication-file: %w", err)}
				}
				fwCred = &c
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return &exitError{2, fmt.Errorf("scheduler: --listen: %w", err)}
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			var flags []string
			if announcerEnsemble != "" {
				flags = append(flags, "--announcer-ensemble", announcerEnsemble)
			}
			sc.DisablePreemptor, sc.OfferReservation = !enablePreemptor, offerReservation
			sc.Cluster, sc.DataDir = cfg.Cluster, dataDir
			sc.ExecutorPath, sc.ExecutorFlags, sc.BasicAuth, sc.Timings = exe, flags, users, &tc
			sc.FailoverTimeout, sc.MaxTasksPerJob = failover, maxTasks
			sc.ObserverPort, sc.MaxUpdateInstanceFailures, sc.UpdateReservation = observerPort, maxUpdateFailures, updateReservation
			sc.UpdateHistoryPerJob, sc.CronTimezone, sc.HostMaintenancePollInterval = updateHistory, cronTZ, maintenancePoll
			sc.AllowRootTasks = allowRootTasks
			sc.AllowDockerParameters = allowDockerParameters
			sc.FrameworkCredential, sc.AnnouncePrincipal = fwCred, announcePrincipal
			err = server.Run(ctx, server.Options{
				Config: sc, Listener: ln, Hostname: hostname, MasterURL: masterURL,
				ZooKeeper: zkServers, ServersetPath: serversetPath, Restore: restore,
				Serve: serveHTTP, Logger: newLogger(),
			})
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			return nil
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
	f.StringVar(&fwAuthFile, "framework-authentication-file", "", "properties file (0600) with aurora_authentication_principal and aurora_authentication_secret: the framework authenticates to the Mesos master with them (as Aurora's -framework_authentication_file)")
	f.BoolVar(&announcePrincipal, "framework-announce-principal", false, "with --framework-authentication-file, also name the principal in the FrameworkInfo (as Aurora's -framework_announce_principal)")
	f.BoolVar(&allowRootTasks, "allow-root-tasks", false, "accept jobs whose role runs as uid 0 (root, or a user with uid 0); refused as INVALID_REQUEST otherwise")
	f.BoolVar(&allowDockerParameters, "allow-docker-parameters", false, `let Docker containers carry parameters (Aurora's -allow_docker_parameters); refused with "Docker parameters not allowed." otherwise (Docker containers themselves are refused until image support exists)`)
	f.StringVar(&announcerEnsemble, "announcer-ensemble", "", "ZooKeeper ensemble passed to executors for task announcements")
	f.StringVar(&restore, "restore", "", "replace the store with this backup (from performBackup) before starting")
	f.StringVar(&profile, "timing-profile", "dev", `defaults of the timing flags: "dev" or "aurora"`)
	knobs = addSchedulerKnobs(cmd)
	f.BoolVar(&enablePreemptor, "enable-preemptor", true, "let PENDING tasks preempt others (Aurora's -enable_preemptor)")
	f.DurationVar(&offerReservation, "offer-reservation-duration", scheduler.DefaultOfferReservation,
		"how long an agent whose tasks were preempted is kept for the task they were preempted for")
	f.DurationVar(&failover, "framework-failover-timeout", scheduler.DefaultFailoverTimeout, "how long Mesos keeps the framework's tasks while no scheduler is connected")
	f.IntVar(&maxTasks, "max-tasks-per-job", scheduler.DefaultMaxTasksPerJob, "most instances a job may have")
	f.IntVar(&maxUpdateFailures, "max-update-instance-failures", scheduler.DefaultMaxUpdateInstanceFailures, "most maxPerInstanceFailures × instance count a job update may allow")
	f.IntVar(&updateHistory, "job-update-history-per-job-threshold", scheduler.DefaultUpdateHistoryPerJob, "ended job updates kept per job (older ones are forgotten)")
	f.DurationVar(&updateReservation, "update-agent-reservation", scheduler.DefaultUpdateReservation, "how long a job update keeps an agent for an instance's new task after killing its old one there")
	f.StringVar(&cronTZ, "cron-timezone", cron.DefaultTimezone, "time zone cron schedules are read in: GMT, UTC or an IANA name such as America/New_York")
	f.DurationVar(&maintenancePoll, "host-maintenance-polling-interval", scheduler.DefaultHostMaintenancePollInterval, "how often SLA-aware drains (slaDrainHosts) look at their hosts' tasks again")
	f.IntVar(&observerPort, "observer-port", 0, "port of the observers on the agents' hosts, for the UI's links to tasks (0: no links)")
	return cmd
}

// readUsers reads the [users] section of a Shiro INI file, as Aurora's
// -shiro_ini: user name → password. Roles are not used yet: every listed
// user may call every RPC.
func readUsers(path string) (map[string]string, error) {
	list, err := shiro.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := make(map[string]string, len(list))
	for _, u := range list {
		users[u.Name] = u.Password
	}
	return users, nil
}

// schedulerKnobs are the scheduler's flags whose defaults come from
// --timing-profile, filling sc and tc.
type schedulerKnobs struct {
	sc   scheduler.Config
	tc   state.Config
	list []profiled
	// reconcile is --reconciliation-interval, the old single interval.
	reconcile      time.Duration
	partitionAware bool
	revocable      bool
}

// addSchedulerKnobs registers the profiled flags on cmd.
func addSchedulerKnobs(cmd *cobra.Command) *schedulerKnobs {
	k := &schedulerKnobs{}
	f := cmd.Flags()
	devCfg, auroraCfg := scheduler.DevProfile(), scheduler.AuroraProfile()
	dev, aurora := *devCfg.Timings, *auroraCfg.Timings
	for _, d := range []struct {
		name        string
		dev, aurora time.Duration
		dst         *time.Duration
		usage       string
	}{
		{"transient-task-state-timeout", dev.TransientTaskStateTimeout, aurora.TransientTaskStateTimeout, &k.tc.TransientTaskStateTimeout,
			"a task this long in ASSIGNED, PREEMPTING, RESTARTING, KILLING or DRAINING goes LOST"},
		{"initial-task-kill-retry-interval", dev.InitialTaskKillRetryInterval, aurora.InitialTaskKillRetryInterval, &k.tc.InitialTaskKillRetryInterval,
			"first wait before a kill is sent again (doubling)"},
		{"flapping-task-threshold", dev.FlappingTaskThreshold, aurora.FlappingTaskThreshold, &k.tc.FlappingTaskThreshold,
			"a task that ran shorter than this flapped"},
		{"initial-flapping-task-delay", dev.InitialFlappingTaskDelay, aurora.InitialFlappingTaskDelay, &k.tc.InitialFlappingTaskDelay,
			"THROTTLED time of a flapping task's replacement (doubling; 0: no throttling)"},
		{"max-flapping-task-delay", dev.MaxFlappingTaskDelay, aurora.MaxFlappingTaskDelay, &k.tc.MaxFlappingTaskDelay,
			"longest THROTTLED time"},
		{"initial-never-ran-task-delay", dev.InitialNeverRanTaskDelay, aurora.InitialNeverRanTaskDelay, &k.tc.InitialNeverRanTaskDelay,
			"THROTTLED time of the replacement of a task that ended before it ever ran (doubling; applies even without the flapping throttle; 0: off)"},
		{"first-schedule-delay", dev.FirstScheduleDelay, aurora.FirstScheduleDelay, &k.tc.FirstScheduleDelay,
			"wait before a new task group's first scheduling attempt"},
		{"initial-schedule-penalty", dev.InitialSchedulePenalty, aurora.InitialSchedulePenalty, &k.tc.InitialSchedulePenalty,
			"wait after a scheduling attempt that placed nothing (doubling)"},
		{"max-schedule-penalty", dev.MaxSchedulePenalty, aurora.MaxSchedulePenalty, &k.tc.MaxSchedulePenalty,
			"longest wait after failed scheduling attempts"},
		{"max-reschedule-task-delay-on-startup", dev.MaxRescheduleTaskDelayOnStartup, aurora.MaxRescheduleTaskDelayOnStartup, &k.tc.MaxRescheduleTaskDelayOnStartup,
			"longest random wait of the PENDING tasks found at start"},
		{"preemption-delay", devCfg.PreemptionDelay, auroraCfg.PreemptionDelay, &k.sc.PreemptionDelay,
			"how long a task must be PENDING before it may preempt others"},
		{"preemption-slot-search-interval", devCfg.PreemptionSlotSearchInterval, auroraCfg.PreemptionSlotSearchInterval, &k.sc.PreemptionSlotSearchInterval,
			"how often PENDING tasks look for tasks to preempt"},
		{"min-offer-hold-time", devCfg.OfferHold, auroraCfg.OfferHold, &k.sc.OfferHold,
			"how long an unused offer is held before it is declined"},
		{"offer-hold-jitter-window", devCfg.OfferHoldJitter, auroraCfg.OfferHoldJitter, &k.sc.OfferHoldJitter,
			"most random time added to each offer's hold time"},
		{"offer-filter-duration", devCfg.OfferFilterDuration, auroraCfg.OfferFilterDuration, &k.sc.OfferFilterDuration,
			"refuse_seconds of the DECLINE of an unused offer: how long Mesos keeps the agent's resources from this framework"},
		{"reconciliation-initial-delay", devCfg.ReconcileInitialDelay, auroraCfg.ReconcileInitialDelay, &k.sc.ReconcileInitialDelay,
			"wait after the start before tasks are first reconciled with Mesos"},
		{"reconciliation-explicit-interval", devCfg.ReconcileExplicitInterval, auroraCfg.ReconcileExplicitInterval, &k.sc.ReconcileExplicitInterval,
			"how often every task the store places on an agent is reconciled explicitly"},
		{"reconciliation-implicit-interval", devCfg.ReconcileImplicitInterval, auroraCfg.ReconcileImplicitInterval, &k.sc.ReconcileImplicitInterval,
			"how often tasks are reconciled implicitly (Mesos reports all the framework's tasks)"},
		{"reconciliation-schedule-spread", devCfg.ReconcileScheduleSpread, auroraCfg.ReconcileScheduleSpread, &k.sc.ReconcileScheduleSpread,
			"how far the periodic implicit reconciliations run behind the explicit ones"},
		{"reconciliation-explicit-batch-interval", devCfg.ReconcileExplicitBatchInterval, auroraCfg.ReconcileExplicitBatchInterval, &k.sc.ReconcileExplicitBatchInterval,
			"wait between two batches of an explicit reconciliation"},
		{"unavailability-threshold", devCfg.UnavailabilityThreshold, auroraCfg.UnavailabilityThreshold, &k.sc.UnavailabilityThreshold,
			"how long before a Mesos maintenance window its agent stops taking tasks"},
		{"history-prune-threshold", devCfg.HistoryPruneThreshold, auroraCfg.HistoryPruneThreshold, &k.sc.HistoryPruneThreshold,
			"how long a terminal task is kept"},
		{"history-min-retention-threshold", devCfg.HistoryMinRetention, auroraCfg.HistoryMinRetention, &k.sc.HistoryMinRetention,
			"how long a terminal task is kept at least, whatever the per-job limit"},
	} {
		addProfiled(&k.list, f.DurationVar, d.name, d.dev, d.aurora, d.dst, d.usage)
	}
	addProfiled(&k.list, f.Float64Var, "max-schedule-attempts-per-sec", devCfg.MaxScheduleAttemptsPerSec, auroraCfg.MaxScheduleAttemptsPerSec,
		&k.sc.MaxScheduleAttemptsPerSec, "rate limit of scheduling attempts (each of up to --max-tasks-per-schedule-attempt tasks of one task group)")
	addProfiled(&k.list, f.IntVar, "scheduling-max-batch-size", devCfg.SchedulingMaxBatchSize, auroraCfg.SchedulingMaxBatchSize,
		&k.sc.SchedulingMaxBatchSize, "most scheduling attempts matched against the offers and stored together")
	addProfiled(&k.list, f.IntVar, "max-tasks-per-schedule-attempt", devCfg.MaxTasksPerScheduleAttempt, auroraCfg.MaxTasksPerScheduleAttempt,
		&k.sc.MaxTasksPerScheduleAttempt, "most tasks of one task group a scheduling attempt tries to place")
	addProfiled(&k.list, f.IntVar, "min-required-instances-for-sla-check", devCfg.SlaMinRequiredInstances, auroraCfg.SlaMinRequiredInstances,
		&k.sc.SlaMinRequiredInstances, "jobs with fewer active tasks are drained without an SLA check (dev: 2, as Aurora's Vagrant devcluster)")
	addProfiled(&k.list, f.Float64Var, "thermos-executor-cpu", devCfg.Overhead.CPUs, auroraCfg.Overhead.CPUs,
		&k.sc.Overhead.CPUs, "cpus added to each task for its executor")
	addProfiled(&k.list, f.Float64Var, "thermos-executor-ram", devCfg.Overhead.MemMB, auroraCfg.Overhead.MemMB,
		&k.sc.Overhead.MemMB, "MB of RAM added to each task for its executor")
	addProfiled(&k.list, f.IntVar, "reconciliation-explicit-batch-size", devCfg.ReconcileExplicitBatchSize, auroraCfg.ReconcileExplicitBatchSize,
		&k.sc.ReconcileExplicitBatchSize, "most tasks named in one explicit reconciliation call")
	addProfiled(&k.list, f.IntVar, "history-max-per-job-threshold", devCfg.HistoryMaxPerJob, auroraCfg.HistoryMaxPerJob,
		&k.sc.HistoryMaxPerJob, "terminal tasks kept per job; older ones go once past --history-min-retention-threshold")
	addProfiled(&k.list, f.BoolVar, "partition-aware", !devCfg.DisablePartitionAware, !auroraCfg.DisablePartitionAware, &k.partitionAware,
		"register PARTITION_AWARE: an unreachable agent's tasks go PARTITIONED (and follow their partition policy) instead of LOST")
	addProfiled(&k.list, f.BoolVar, "receive-revocable-resources", true, true, &k.revocable,
		"register REVOCABLE_RESOURCES and place tasks of a revocable tier on revocable CPUs (Aurora defaults to false; its Vagrant devcluster, like both profiles here, sets true)")
	f.DurationVar(&k.reconcile, "reconciliation-interval", 0,
		"both reconciliation intervals at once (the explicit and implicit flags win when given)")
	return k
}

// resolve fills sc and tc from the flags given and the profile's defaults,
// and checks them.
func (k *schedulerKnobs) resolve(cmd *cobra.Command, profile string) error {
	if profile != "dev" && profile != "aurora" {
		return fmt.Errorf("--timing-profile %q: want dev or aurora", profile)
	}
	for _, p := range k.list {
		p.apply(profile, cmd.Flags().Changed(p.name))
	}
	for name, d := range map[string]time.Duration{
		"preemption-delay": k.sc.PreemptionDelay, "preemption-slot-search-interval": k.sc.PreemptionSlotSearchInterval,
		"min-offer-hold-time": k.sc.OfferHold, "reconciliation-explicit-interval": k.sc.ReconcileExplicitInterval,
		"reconciliation-implicit-interval": k.sc.ReconcileImplicitInterval, "history-prune-threshold": k.sc.HistoryPruneThreshold,
		"history-min-retention-threshold": k.sc.HistoryMinRetention,
	} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive", name)
		}
	}
	for name, d := range map[string]time.Duration{
		"offer-hold-jitter-window": k.sc.OfferHoldJitter, "offer-filter-duration": k.sc.OfferFilterDuration,
		"reconciliation-initial-delay": k.sc.ReconcileInitialDelay, "reconciliation-schedule-spread": k.sc.ReconcileScheduleSpread,
		"reconciliation-explicit-batch-interval": k.sc.ReconcileExplicitBatchInterval, "unavailability-threshold": k.sc.UnavailabilityThreshold,
	} {
		if d < 0 {
			return fmt.Errorf("--%s must not be negative", name)
		}
	}
	for name, n := range map[string]int{
		"scheduling-max-batch-size": k.sc.SchedulingMaxBatchSize, "max-tasks-per-schedule-attempt": k.sc.MaxTasksPerScheduleAttempt,
		"reconciliation-explicit-batch-size": k.sc.ReconcileExplicitBatchSize, "history-max-per-job-threshold": k.sc.HistoryMaxPerJob,
		"min-required-instances-for-sla-check": k.sc.SlaMinRequiredInstances,
	} {
		if n <= 0 {
			return fmt.Errorf("--%s must be positive", name)
		}
	}
	if k.sc.Overhead.CPUs < 0 || k.sc.Overhead.MemMB < 0 {
		return errors.New("--thermos-executor-cpu and --thermos-executor-ram must not be negative")
	}
	if k.sc.MaxScheduleAttemptsPerSec <= 0 {
		return errors.New("--max-schedule-attempts-per-sec must be positive")
	}
	if cmd.Flags().Changed("reconciliation-interval") {
		if k.reconcile <= 0 {
			return errors.New("--reconciliation-interval must be positive")
		}
		// The old single interval, for both kinds unless they are given
		// themselves.
		if !cmd.Flags().Changed("reconciliation-explicit-interval") {
			k.sc.ReconcileExplicitInterval = k.reconcile
		}
		if !cmd.Flags().Changed("reconciliation-implicit-interval") {
			k.sc.ReconcileImplicitInterval = k.reconcile
		}
	}
	if k.sc.UnavailabilityThreshold == 0 {
		k.sc.UnavailabilityThreshold = -1 // Config's "none"; its zero is the default
	}
	k.sc.DisablePartitionAware = !k.partitionAware
	k.sc.DisableRevocableResources = !k.revocable
	return nil
}

// profiled is a flag whose default depends on --timing-profile: the aurora
// profile's value is the default shown, the dev profile's is in the usage.
type profiled struct {
	name  string
	apply func(profile string, changed bool)
}

// addProfiled registers a profiled flag with register (a FlagSet's
// DurationVar, IntVar, ...); apply stores in dst the flag's value when it
// was given, else the profile's.
func addProfiled[T any](knobs *[]profiled, register func(*T, string, T, string), name string, dev, aurora T, dst *T, usage string) {
	v := new(T)
	register(v, name, aurora, fmt.Sprintf("Aurora's -%s: %s (default shown: the aurora profile's; dev: %v)",
		strings.ReplaceAll(name, "-", "_"), usage, dev))
	*knobs = append(*knobs, profiled{name: name, apply: func(profile string, changed bool) {
		switch {
		case changed:
			*dst = *v
		case profile == "aurora":
			*dst = aurora
		default:
			*dst = dev
		}
	}})
}
