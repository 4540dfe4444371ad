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
	"crypto/rand"
	"fmt"
	"log/slog"
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
	Overhead        Overhead      // default 0.01 cpus, 32 MB
	FailoverTimeout time.Duration // default 21 days, as Aurora
	// OfferHold is how long an unused offer is kept before it is declined
	// (Aurora's min_offer_hold_time); default 1 minute.
	OfferHold time.Duration
	// ReconcileInterval is how often tasks are reconciled with Mesos,
	// explicitly then implicitly (Aurora's -reconciliation_*_interval, 60
	// min there); default 5 minutes. It is how a PARTITIONED task whose
	// agent came back is seen RUNNING again.
	ReconcileInterval time.Duration
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
	// CronTimezone is the zone cron schedules are read in (Aurora's
	// -cron_timezone): GMT when empty, else UTC or an IANA name.
	CronTimezone string
	// HostMaintenancePollInterval is how often SLA-aware drains look at
	// their hosts again (Aurora's -host_maintenance_polling_interval);
	// default 1 minute.
	HostMaintenancePollInterval time.Duration
	// SlaMinRequiredInstances: jobs with fewer active tasks are not SLA
	// checked when their hosts drain (Aurora's
	// -min_required_instances_for_sla_check); default 20, as Aurora.
	SlaMinRequiredInstances int
	Logger                  *slog.Logger
	Now                     func() time.Time
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
	jobs        map[api.JobKey]*api.JobConfiguration
	tasks       map[string]*api.ScheduledTask
	offers      map[string]heldOffer
	kick        chan struct{}                    // wakes the scheduling loop
	flaps       map[string]int                   // task id → flapping ancestors (for throttling)
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
}

type heldOffer struct {
	offer mesos.Offer
	since time.Time
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
		cfg.Overhead = Overhead{CPUs: 0.01, MemMB: 32}
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = 21 * 24 * time.Hour
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 5 * time.Minute
	}
	if cfg.OfferHold <= 0 {
		cfg.OfferHold = time.Minute
	}
	if cfg.Timings == nil {
		c := state.DevConfig()
		cfg.Timings = &c
	}
	if cfg.MaxTasksPerJob <= 0 {
		cfg.MaxTasksPerJob = 4000
	}
	if cfg.MaxUpdateInstanceFailures <= 0 {
		cfg.MaxUpdateInstanceFailures = 20000
	}
	if cfg.UpdateHistoryPerJob <= 0 {
		cfg.UpdateHistoryPerJob = 10
	}
	if cfg.UpdateReservation <= 0 {
		cfg.UpdateReservation = 3 * time.Minute
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
		cfg.HostMaintenancePollInterval = time.Minute
	}
	if cfg.SlaMinRequiredInstances <= 0 {
		cfg.SlaMinRequiredInstances = 20
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
		cfg: cfg, store: st, fw: newFramework(cfg.MasterURL), log: cfg.Logger,
		frameworkID: snap.FrameworkID, offers: map[string]heldOffer{}, kick: make(chan struct{}, 1), flaps: map[string]int{},
		hosts: map[string]map[string][]string{}, agents: map[string]agentSize{}, seenOffers: map[string]bool{},
		updateKick: make(chan struct{}, 1), reserved: map[string]reservation{},
	}
	s.loadSnapshot(snap)
	if err := s.initCron(snap); err != nil {
		st.Close()
		return nil, err
	}
	s.initSlaDrains(snap)
	s.log.Info("storage loaded", "framework_id", snap.FrameworkID, "jobs", len(s.jobs), "tasks", len(s.tasks),
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

// Close closes the store.
func (s *Scheduler) Close() error { return s.store.Close() }

// Run connects to Mesos and schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.rearm()
	s.mu.Unlock()
	go s.runMesos(ctx)
	go s.reconcileLoop(ctx)
	go s.watchOffers(ctx)
	// Active updates carry on from where the store has them.
	s.kickUpdates()
	go s.updateLoop(ctx)
	if !s.cfg.DisablePreemptor {
		go s.preemptLoop(ctx)
	}
	go s.cronLoop(ctx)
	go s.slaDrainLoop(ctx)
	s.scheduleLoop(ctx)
}

func (s *Scheduler) setRegistered(v bool) {
	s.mu.Lock()
	s.registered = v
	s.mu.Unlock()
}

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
	rand.Read(b)
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

func formatScalar(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
