// Package scheduler is aurorabox's Aurora scheduler (`aurorabox
// scheduler`): a Mesos framework named Aurora that keeps jobs' tasks
// running. It speaks only the public Mesos v1 scheduler API (through
// mesos-go), so it schedules onto a real Mesos cluster as well as onto the
// embedded one. Its state (jobs, tasks, job updates, the framework id)
// lives in a bbolt store, written through before any API call is answered;
// tasks move by Aurora's state machine (package state), are placed by
// Aurora's matching rules (package match) and are rolled from one
// configuration to another by Aurora's job update engine (package update). The API at /api speaks JSON with
// Aurora's RPC and field names (package api).
package scheduler

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Config configures a scheduler. Zero values get the defaults noted.
type Config struct {
	Cluster       string // default devcluster
	FrameworkName string // default Aurora
	User          string // framework user; default the current user
	Role          string // Mesos role; default * (none)
	Hostname      string // advertised host; default the listen host
	ListenAddr    string // HTTP API and UI, e.g. 127.0.0.1:8081
	MasterURL     string // http://host:port of the Mesos master
	DataDir       string // the store and backups
	// ExecutorPath is the aurorabox binary the agent runs as
	// `<path> executor <ExecutorFlags...>`.
	ExecutorPath    string
	ExecutorFlags   []string
	Overhead        Overhead      // default DevExecutorOverhead (0.01 cpus, 32 MB)
	FailoverTimeout time.Duration // default 21 days, as Aurora
	// OfferHold is how long an unused offer is kept before it is declined
	// (Aurora's -min_offer_hold_time); default 1 minute.
	OfferHold time.Duration
	// OfferHoldJitter is the most random time added to OfferHold for each
	// offer (Aurora's -offer_hold_jitter_window), so that offers are not
	// all declined at once; default 0.
	OfferHoldJitter time.Duration
	// OfferFilterDuration is the refuse_seconds filter of the DECLINE of an
	// unused offer (Aurora's -offer_filter_duration): Mesos offers the
	// agent's resources to this framework again only after it. Default 0.
	OfferFilterDuration time.Duration
	// MaxScheduleAttemptsPerSec rate-limits scheduling attempts (Aurora's
	// -max_schedule_attempts_per_sec); default DevMaxScheduleAttemptsPerSec.
	MaxScheduleAttemptsPerSec float64
	// SchedulingMaxBatchSize is how many scheduling attempts (each of one
	// task group) are matched and stored together (Aurora's
	// -scheduling_max_batch_size); default DevSchedulingMaxBatchSize.
	SchedulingMaxBatchSize int
	// MaxTasksPerScheduleAttempt is how many PENDING tasks of a task group
	// one attempt tries to place (Aurora's -max_tasks_per_schedule_attempt);
	// default DevMaxTasksPerScheduleAttempt.
	MaxTasksPerScheduleAttempt int
	// ReconcileInterval is how often tasks are reconciled with Mesos,
	// explicitly and implicitly, unless ReconcileExplicitInterval or
	// ReconcileImplicitInterval say otherwise; default 5 minutes. It is how
	// a PARTITIONED task whose agent came back is seen RUNNING again.
	ReconcileInterval time.Duration
	// ReconcileExplicitInterval and ReconcileImplicitInterval are how
	// often each kind of reconciliation runs (Aurora's
	// -reconciliation_explicit_interval and _implicit_interval, 60 min
	// there); default ReconcileInterval.
	ReconcileExplicitInterval, ReconcileImplicitInterval time.Duration
	// ReconcileInitialDelay is how long after Run the first reconciliation
	// waits (Aurora's -reconciliation_initial_delay); default 0: at the
	// first registration. Once it has passed, every (re)registration
	// reconciles at once, explicitly then implicitly.
	ReconcileInitialDelay time.Duration
	// ReconcileScheduleSpread delays the periodic implicit reconciliations
	// behind the explicit ones (Aurora's -reconciliation_schedule_spread);
	// default 0.
	ReconcileScheduleSpread time.Duration
	// ReconcileExplicitBatchSize is how many tasks one explicit RECONCILE
	// call names (Aurora's -reconciliation_explicit_batch_size); default
	// 1000. ReconcileExplicitBatchInterval is the wait between two batches
	// (Aurora's -reconciliation_explicit_batch_interval); default 0.
	ReconcileExplicitBatchSize     int
	ReconcileExplicitBatchInterval time.Duration
	// UnavailabilityThreshold is how long before a Mesos maintenance
	// window (an offer's unavailability) its agent stops taking tasks
	// (Aurora's -unavailability_threshold); default 1 minute (Aurora's
	// vagrant value); negative: only once the window has started.
	UnavailabilityThreshold time.Duration
	// DisablePartitionAware registers without the PARTITION_AWARE
	// capability (Aurora's -partition_aware=false, its default): Mesos then
	// reports unreachable agents' tasks TASK_LOST, and the scheduler takes
	// any TASK_UNREACHABLE or TASK_UNKNOWN for TASK_LOST too, so tasks go
	// LOST (and are rescheduled) instead of PARTITIONED.
	DisablePartitionAware bool
	// DisableRevocableResources registers without the REVOCABLE_RESOURCES
	// capability (Aurora's -receive_revocable_resources=false, its own
	// default; the Vagrant devcluster sets it): Mesos then offers no
	// revocable resources and tasks of a revocable tier stay PENDING.
	DisableRevocableResources bool
	// HistoryPruneThreshold is how long a terminal task is kept (Aurora's
	// -history_prune_threshold); default 2 days.
	HistoryPruneThreshold time.Duration
	// HistoryMaxPerJob is how many terminal tasks of a job are kept
	// (Aurora's -history_max_per_job_threshold): older ones go once they
	// have been terminal for HistoryMinRetention; default 100.
	HistoryMaxPerJob int
	// HistoryMinRetention is how long a terminal task is kept whatever
	// else says it may go (Aurora's -history_min_retention_threshold);
	// default 1 hour.
	HistoryMinRetention time.Duration
	// Advertise, when set, advertises the scheduler in the ServerSet. It is
	// called once, in the background, when the scheduler first registers
	// with Mesos (Aurora's ACTIVE), as Aurora advertises itself then.
	Advertise func(context.Context) error
	// LeaderFinder, when set, returns the scheduler advertised in the
	// ServerSet, for /leaderhealth until this one is advertised: 503 while
	// another one is, 502 while none is.
	LeaderFinder func() (string, bool)
	// ObserverPort is where the observers listen on the agents' hosts (for
	// the UI's links to task pages); 0: no links.
	ObserverPort int
	// Timings are the state machine's timeouts and penalties; default
	// state.DevConfig() (no multi-second penalties).
	Timings *state.Config
	// MaxTasksPerJob caps a job's instances (Aurora's -max_tasks_per_job);
	// default 4000.
	MaxTasksPerJob int
	// MaxUpdateInstanceFailures caps maxPerInstanceFailures × instance
	// count of a job update (Aurora's -max_update_instance_failures);
	// default 20000.
	MaxUpdateInstanceFailures int
	// UpdateHistoryPerJob is how many ended updates of a job are kept
	// (Aurora's -job_update_history_per_job_threshold); default 10.
	UpdateHistoryPerJob int
	// UpdateReservation is how long an agent stays reserved for an
	// instance's new task after a job update killed its old one there
	// (KILL_TASK_AND_RESERVE); default 3 minutes.
	UpdateReservation time.Duration
	// DisablePreemptor turns preemption off (Aurora's -enable_preemptor=false).
	DisablePreemptor bool
	// PreemptionDelay is how long a task must have been PENDING before it
	// may preempt others (Aurora's -preemption_delay); default
	// DevPreemptionDelay.
	PreemptionDelay time.Duration
	// PreemptionSlotSearchInterval is how often PENDING tasks look for
	// tasks to preempt (Aurora's -preemption_slot_search_interval); default
	// DevPreemptionSlotSearchInterval.
	PreemptionSlotSearchInterval time.Duration
	// OfferReservation is how long an agent whose tasks were preempted is
	// kept for the task they were preempted for (Aurora's
	// -offer_reservation_duration); default 3 minutes.
	OfferReservation time.Duration
	// BasicAuth, when not empty, protects the API's mutating RPCs (every
	// RPC outside Aurora's ReadOnlyScheduler service) with HTTP basic
	// authentication: user name → password. Read-only RPCs stay open, as
	// in Aurora (AURORA-1295).
	BasicAuth map[string]string
	// FrameworkCredential, when set, authenticates the framework to the
	// Mesos master (Aurora's -framework_authentication_file): HTTP basic
	// authentication on every call. A framework whose executors run as
	// root, as Aurora's do, needs it unless the master has
	// --root-submissions. AnnouncePrincipal also names the principal in
	// the FrameworkInfo (Aurora's -framework_announce_principal).
	FrameworkCredential *FrameworkCredential
	AnnouncePrincipal   bool
	// AllowRootTasks lets jobs run as uid 0. Without it, a job whose role
	// is root, or names a user with uid 0 on the scheduler's host (such as
	// toor), is refused as INVALID_REQUEST by every RPC that adds or
	// starts tasks of it: the executor runs a task as its role's user.
	AllowRootTasks bool
	// AllowDockerParameters lets a Docker container carry parameters
	// (Aurora's -allow_docker_parameters); without it such a job is
	// refused with "Docker parameters not allowed.". Docker containers are
	// refused either way until image support exists (checkContainer).
	AllowDockerParameters bool
	// CronTimezone is the zone cron schedules are read in (Aurora's
	// -cron_timezone): GMT when empty, else UTC or an IANA name.
	CronTimezone string
	// HostMaintenancePollInterval is how often SLA-aware drains look at
	// their hosts again (Aurora's -host_maintenance_polling_interval);
	// default 1 minute.
	HostMaintenancePollInterval time.Duration
	// SlaMinRequiredInstances: jobs with fewer active tasks are not SLA
	// checked when their hosts drain (Aurora's
	// -min_required_instances_for_sla_check); default
	// DevSlaMinRequiredInstances (Aurora's Vagrant devcluster's).
	SlaMinRequiredInstances int
	// SlaAwareKillRetry is how soon an SLA-aware update checks again a
	// kill its SLA policy did not allow (Aurora's
	// -sla_aware_kill_retry_min_delay); default 1 minute.
	SlaAwareKillRetry time.Duration
	Logger            *slog.Logger
	Now               func() time.Time
	// Rand returns random numbers in [0, 1), for the offer hold jitter and
	// the startup scheduling delay; default math/rand/v2's Float64.
	Rand func() float64
}

func (c Config) advertised() string {
	_, port, _ := net.SplitHostPort(c.ListenAddr)
	return net.JoinHostPort(c.Hostname, port)
}

// Scheduler is a running scheduler.
type Scheduler struct {
	cfg   Config
	store *storage.Store
	fw    *framework
	log   *slog.Logger

	mu          sync.Mutex
	frameworkID string
	registered  bool
	// cronJobs are the cron jobs' templates; stored. A job that is not a
	// cron job is not stored: it is its tasks, and exists while one is
	// active (state.JobExists; see jobs.go).
	cronJobs    map[api.JobKey]*api.JobConfiguration
	tasks       map[string]*api.ScheduledTask
	offers      map[string]heldOffer
	kick        chan struct{}                    // wakes the scheduling loop
	flaps       map[string]flapCount             // task id → flapping ancestors (for throttling)
	hosts       map[string]map[string][]string   // hostname → attributes, from offers
	maintenance map[string]match.MaintenanceMode // hostname → mode (NONE is absent); stored
	vetoes      map[string][]match.Veto          // why pending tasks were not placed in the last round
	quotas      map[string]api.ResourceAggregate // role → quota; stored
	agents      map[string]agentSize             // agent id → the most it was seen to have, from offers
	seenOffers  map[string]bool                  // held offers already counted in agents
	updates     map[string]*jobUpdate            // job updates by id; stored
	updateKick  chan struct{}                    // wakes the update loop
	reserved    map[string]reservation           // agent id → the instance it is kept for (updates)
	cron        *cronState                       // cron jobs (cronjobs.go)
	sla         *slaState                        // SLA-aware drains (sladrain.go)

	// Reconciliation counters, for /vars.
	explicitReconciliations, implicitReconciliations, reconcileUpdates int
	// reservationsMade counts the agents reserved by job updates, for /vars.
	reservationsMade int
	// preemptor counts the preemptor's work, for /vars.
	preemptor preemptorStats
	// sched holds the task groups and the rate limiter (schedule.go).
	sched scheduling
	// active is set at the first registration with Mesos (Aurora's
	// lifecycle state ACTIVE, which a later disconnection does not undo);
	// activeCh is closed then.
	active   bool
	activeCh chan struct{}
	// advertised is set once Config.Advertise has returned nil (or at
	// activation, without Advertise): /leaderhealth answers 200 from then.
	advertised bool
	// recon is the periodic reconciliations' schedule (reconcile.go).
	recon reconcileSchedule
	// after waits between explicit reconciliation batches; time.After
	// but in tests.
	after func(time.Duration) <-chan time.Time
	// life joins the background work before Run returns (lifecycle.go).
	life *lifecycle
}

type heldOffer struct {
	offer mesos.Offer
	since time.Time
	until time.Time // declined then, if still unused
}

// New opens the scheduler's store and loads it.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Cluster == "" {
		cfg.Cluster = "devcluster"
	}
	if cfg.FrameworkName == "" {
		cfg.FrameworkName = "Aurora"
	}
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _, _ = net.SplitHostPort(cfg.ListenAddr)
	}
	if cfg.Overhead == (Overhead{}) {
		cfg.Overhead = DevExecutorOverhead
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = DefaultFailoverTimeout
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = DevProfile().ReconcileExplicitInterval
	}
	if cfg.ReconcileExplicitInterval <= 0 {
		cfg.ReconcileExplicitInterval = cfg.ReconcileInterval
	}
	if cfg.ReconcileImplicitInterval <= 0 {
		cfg.ReconcileImplicitInterval = cfg.ReconcileInterval
	}
	if cfg.ReconcileExplicitBatchSize <= 0 {
		cfg.ReconcileExplicitBatchSize = defaultReconcileBatch
	}
	if cfg.OfferHold <= 0 {
		cfg.OfferHold = DevProfile().OfferHold
	}
	if cfg.MaxScheduleAttemptsPerSec <= 0 {
		cfg.MaxScheduleAttemptsPerSec = DevMaxScheduleAttemptsPerSec
	}
	if cfg.SchedulingMaxBatchSize <= 0 {
		cfg.SchedulingMaxBatchSize = DevSchedulingMaxBatchSize
	}
	if cfg.MaxTasksPerScheduleAttempt <= 0 {
		cfg.MaxTasksPerScheduleAttempt = DevMaxTasksPerScheduleAttempt
	}
	switch {
	case cfg.UnavailabilityThreshold == 0:
		cfg.UnavailabilityThreshold = DevUnavailabilityThreshold
	case cfg.UnavailabilityThreshold < 0:
		cfg.UnavailabilityThreshold = 0
	}
	if cfg.HistoryPruneThreshold <= 0 {
		cfg.HistoryPruneThreshold = DefaultHistoryPruneThreshold
	}
	if cfg.HistoryMaxPerJob <= 0 {
		cfg.HistoryMaxPerJob = DefaultHistoryMaxPerJob
	}
	if cfg.HistoryMinRetention <= 0 {
		cfg.HistoryMinRetention = DefaultHistoryMinRetention
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Timings == nil {
		c := state.DevConfig()
		cfg.Timings = &c
	}
	if cfg.MaxTasksPerJob <= 0 {
		cfg.MaxTasksPerJob = DefaultMaxTasksPerJob
	}
	if cfg.MaxUpdateInstanceFailures <= 0 {
		cfg.MaxUpdateInstanceFailures = DefaultMaxUpdateInstanceFailures
	}
	if cfg.UpdateHistoryPerJob <= 0 {
		cfg.UpdateHistoryPerJob = DefaultUpdateHistoryPerJob
	}
	if cfg.UpdateReservation <= 0 {
		cfg.UpdateReservation = DefaultUpdateReservation
	}
	if cfg.PreemptionDelay <= 0 {
		cfg.PreemptionDelay = DevPreemptionDelay
	}
	if cfg.PreemptionSlotSearchInterval <= 0 {
		cfg.PreemptionSlotSearchInterval = DevPreemptionSlotSearchInterval
	}
	if cfg.OfferReservation <= 0 {
		cfg.OfferReservation = DefaultOfferReservation
	}
	if cfg.HostMaintenancePollInterval <= 0 {
		cfg.HostMaintenancePollInterval = DefaultHostMaintenancePollInterval
	}
	if cfg.SlaAwareKillRetry <= 0 {
		cfg.SlaAwareKillRetry = DefaultSlaAwareKillRetry
	}
	if cfg.SlaMinRequiredInstances <= 0 {
		cfg.SlaMinRequiredInstances = DevSlaMinRequiredInstances
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st, err := storage.Open(filepath.Join(cfg.DataDir, "scheduler.db"))
	if err != nil {
		return nil, err
	}
	snap, err := st.Load()
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Scheduler{
		cfg: cfg, store: st, fw: newFramework(cfg.MasterURL, cfg.FrameworkCredential), log: cfg.Logger,
		frameworkID: snap.FrameworkID, offers: map[string]heldOffer{}, kick: make(chan struct{}, 1), flaps: map[string]flapCount{},
		hosts: map[string]map[string][]string{}, agents: map[string]agentSize{}, seenOffers: map[string]bool{},
		updateKick: make(chan struct{}, 1), reserved: map[string]reservation{},
		vetoes: map[string][]match.Veto{}, sched: newScheduling(cfg.MaxScheduleAttemptsPerSec),
		activeCh: make(chan struct{}), after: time.After, life: newLifecycle(),
	}
	s.loadSnapshot(snap)
	if err := s.dropStoredJobs(snap); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.initCron(snap); err != nil {
		st.Close()
		return nil, err
	}
	s.initSlaDrains(snap)
	s.log.Info("storage loaded", "framework_id", snap.FrameworkID, "cron_jobs", len(s.cronJobs), "tasks", len(s.tasks),
		"quotas", len(s.quotas), "hosts_in_maintenance", len(s.maintenance), "job_updates", len(s.updates))
	return s, nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// Cluster is the cluster's name.
func (s *Scheduler) Cluster() string { return s.cfg.Cluster }

// observerURL is the observer on a task's host, for the UI's links.
func (s *Scheduler) observerURL(host string) string {
	if s.cfg.ObserverPort == 0 || host == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.ObserverPort))
}

// Close stops what is left of the background work (the state machine's
// timers, when Run never ran) and closes the store. Call it after Run has
// returned.
func (s *Scheduler) Close() error {
	s.life.stop()
	return s.store.Close()
}

// Run connects to Mesos and schedules until ctx ends. It returns once every
// goroutine it started (and those they started) has ended and no timer of
// the scheduler can fire any more; the scheduler does no more work then,
// and Close may close the store.
func (s *Scheduler) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	stopLife := context.AfterFunc(ctx, s.life.cancel)
	defer func() {
		cancel()
		stopLife()
		s.life.stop()
	}()
	s.start()
	for _, loop := range []func(context.Context){s.advertise, s.runMesos, s.reconcileLoop, s.historyLoop, s.watchOffers} {
		s.life.goFunc(func() { loop(ctx) })
	}
	// Active updates carry on from where the store has them.
	s.kickUpdates()
	s.life.goFunc(func() { s.updateLoop(ctx) })
	if !s.cfg.DisablePreemptor {
		s.life.goFunc(func() { s.preemptLoop(ctx) })
	}
	s.life.goFunc(func() { s.cronLoop(ctx) })
	s.life.goFunc(func() { s.slaDrainLoop(ctx) })
	s.scheduleLoop(ctx)
}

// start readies what the loops need: the stored tasks' timers, the
// reconciliation schedule, and the task groups of the PENDING tasks found
// in the store, which wait a random startup delay (Aurora's
// -max_reschedule_task_delay_on_startup).
func (s *Scheduler) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rearm()
	now := s.cfg.Now()
	s.recon = newReconcileSchedule(s.cfg, now)
	s.refreshGroups(now, true)
}

func (s *Scheduler) setRegistered(v bool) {
	s.mu.Lock()
	s.registered = v
	if v && !s.active {
		s.active = true
		close(s.activeCh)
	}
	s.mu.Unlock()
}

// advertise calls Config.Advertise at the first registration.
func (s *Scheduler) advertise(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.activeCh:
	}
	if s.cfg.Advertise != nil {
		if err := s.cfg.Advertise(ctx); err != nil {
			s.log.Error("cannot advertise the scheduler", "err", err)
			return
		}
	}
	s.mu.Lock()
	s.advertised = true
	s.mu.Unlock()
}

// Active is closed once the scheduler has first registered with Mesos
// (Aurora's lifecycle state ACTIVE): the time for a leader to advertise
// itself in the ServerSet, as Aurora does.
func (s *Scheduler) Active() <-chan struct{} { return s.activeCh }

// Registered reports whether the framework is subscribed.
func (s *Scheduler) Registered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registered
}

// wake asks the scheduling loop for a round, and the update loop for a
// look at the updates (tasks may have changed).
func (s *Scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.kickUpdates()
}

func newUUID() string {
	b := make([]byte, 16)
	crand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func nowMS(t time.Time) int64 { return t.UnixNano() / int64(time.Millisecond) }

// sortedTasks returns tasks matching q, by job, instance and id.
func (s *Scheduler) sortedTasks(q api.TaskQuery) []api.ScheduledTask {
	var out []api.ScheduledTask
	for _, t := range s.tasks {
		if q.Matches(*t) {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].AssignedTask, out[j].AssignedTask
		if a.Task.Job != b.Task.Job {
			return a.Task.Job.String() < b.Task.Job.String()
		}
		if a.InstanceID != b.InstanceID {
			return a.InstanceID < b.InstanceID
		}
		return a.TaskID < b.TaskID
	})
	if q.Offset > 0 {
		out = out[min(q.Offset, len(out)):]
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// formatScalar renders a resource amount as briefly as it is exact: 0.5,
// 1024, and 1e+308 rather than a 309-digit number.
func formatScalar(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
