// Package master is aurorabox's Mesos-compatible master. Frameworks use the
// public Mesos v1 scheduler API (POST /api/v1/scheduler, RecordIO event
// streams, JSON or protobuf through mesos-go's types); operators and UIs use
// /master/state and friends. Agents reach the master through an internal API
// (see agentapi.go) that is ours to shape: only the framework-facing and
// operator-facing surfaces must match Mesos.
//
// Allocation is Mesos' DRF (package allocator decides, see its doc): the
// framework, within the role, with the lowest dominant share is offered an
// agent's free resources first; DECLINE and ACCEPT leave refuse filters
// (Config.DeclineDelay, 5 s, when they carry none); SUPPRESS and REVIVE
// work as in Mesos; and with Config.OfferTimeout offers a framework sits
// on are rescinded. As a development profile, resources are offered as
// soon as they are free (an agent registers, a task ends, a framework
// subscribes or revives) instead of on a 1 s allocation round.
package master

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master/allocator"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Version is the Mesos version we present: the release whose APIs we
// implement (see mesosutil.MesosAPIVersion), not a Mesos build.
const Version = mesosutil.MesosAPIVersion

// Config configures a master. Zero values get the defaults noted.
type Config struct {
	ListenAddr        string
	Hostname          string        // default: the listen host
	HeartbeatInterval time.Duration // default 15s, as Mesos
	// DeclineDelay is the refuse filter of a DECLINE, or of the unused
	// part of an ACCEPT, that carries no filters: Mesos' default
	// Filters.refuse_seconds, 5 s.
	DeclineDelay time.Duration
	// OfferTimeout is how long a framework may hold an offer before the
	// master rescinds it (Mesos' --offer_timeout); 0: no timeout.
	OfferTimeout time.Duration
	// Weights are the roles' weights in DRF (Mesos' --weights); a role not
	// listed weighs 1. See allocator.ParseWeights.
	Weights map[string]float64
	// AgentRemovalTimeout is how long a disconnected agent has to come back
	// before its tasks are reported TASK_UNREACHABLE (to partition-aware
	// frameworks) or TASK_LOST: Mesos' agent_ping_timeout ×
	// max_agent_ping_timeouts, 15 s × 5 by default.
	AgentRemovalTimeout time.Duration
	// AgentPingTimeout and MaxAgentPingTimeouts are Mesos'
	// agent_ping_timeout and max_agent_ping_timeouts (default 15s and 5):
	// the master pings each connected agent (a HEARTBEAT command) every
	// AgentPingTimeout, and drops the stream of an agent that left
	// MaxAgentPingTimeouts pings in a row unanswered, as if the agent had
	// disconnected (a hung or partitioned agent whose connection stays
	// open). See serveAgentSubscribe.
	AgentPingTimeout     time.Duration
	MaxAgentPingTimeouts int
	// AgentSecret, when set, is what every agent request on the internal
	// paths must carry (see authAgent); agents without it get 401.
	AgentSecret []byte
	// InsecureAgents accepts agents without a secret when AgentSecret is
	// empty; without either, the master refuses every agent (403).
	InsecureAgents bool
	// Credentials are the principals and secrets frameworks may
	// authenticate with (mesos-master --credentials); see frameworkauth.go.
	Credentials Credentials
	// AuthenticateHTTPFrameworks requires every framework to authenticate
	// (mesos-master --authenticate_http_frameworks).
	AuthenticateHTTPFrameworks bool
	// RootSubmissions lets frameworks that did not authenticate run tasks
	// as uid 0 (mesos-master --root_submissions); off by default.
	RootSubmissions bool
	// BuildVersion is aurorabox's own version, shown in /version's and
	// /master/state's build fields and on the web page.
	BuildVersion string
	Logger       *slog.Logger
	Now          func() time.Time
}

// AgentLink carries the master's commands to one agent.
type AgentLink interface {
	// Launch runs tasks; rootAllowed tells the agent whether the
	// framework may run any of them as uid 0 (see frameworkauth.go).
	Launch(fw *mesos.FrameworkInfo, tasks []mesos.TaskInfo, rootAllowed bool)
	Kill(fwID mesos.FrameworkID, taskID mesos.TaskID)
	Acknowledge(fwID mesos.FrameworkID, taskID mesos.TaskID, uuid []byte)
	ShutdownFramework(fwID mesos.FrameworkID)
	ShutdownExecutor(fwID mesos.FrameworkID, executorID mesos.ExecutorID)
	Message(fwID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte)
}

// Master is the master's state. All fields are guarded by mu.
type Master struct {
	cfg   Config
	id    string
	start time.Time

	mu         sync.Mutex
	frameworks map[string]*framework
	completed  []*framework
	agents     map[string]*agent
	agentOrder []string
	offers     map[string]*offer
	nextFW     int
	nextAgent  int
	alloc      *allocator.Engine
	allocTimer *time.Timer // armed for alloc.Next()
	schedule   maintenance.Schedule
	machines   map[string]machineMode // by machineKey; absent = UP
	inverse    *inverseBook           // inverse offers and answers; made on first use
	opSubs     opSubscribers          // operator API event streams (operator_events.go)
}

type framework struct {
	id             string
	info           mesos.FrameworkInfo
	sub            *subscription // nil while disconnected
	registered     time.Time
	reregistered   time.Time
	unregistered   time.Time
	suppressed     bool
	tasks          map[string]*task
	completedTasks []*task
	failover       *time.Timer
	// principal is the principal the framework authenticated as when it
	// subscribed; empty if it did not (see frameworkauth.go).
	principal string
	// recovered is set for a framework the master learnt of from a
	// re-registering agent (after a master restart) and that has not
	// subscribed since.
	recovered bool
}

type agent struct {
	id         string
	info       mesos.AgentInfo
	pid        string
	registered time.Time
	link       AgentLink
	total      mesos.Resources
	used       mesos.Resources // by tasks
	offered    mesos.Resources
	// unreachable is set once the agent stayed away past the removal
	// timeout and its tasks were reported lost or unreachable.
	unreachable bool
}

type offer struct {
	id    string
	fw    string
	agent string
	res   mesos.Resources
}

type task struct {
	info     mesos.TaskInfo
	fw       string
	agent    string
	state    mesos.TaskState
	statuses []mesos.TaskStatus
	res      mesos.Resources // resources held on the agent, released when terminal
}

// New returns a master with no frameworks and no agents.
func New(cfg Config) *Master {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 15 * time.Second
	}
	if cfg.AgentRemovalTimeout <= 0 {
		cfg.AgentRemovalTimeout = 75 * time.Second
	}
	if cfg.AgentPingTimeout <= 0 {
		cfg.AgentPingTimeout = 15 * time.Second
	}
	if cfg.MaxAgentPingTimeouts <= 0 {
		cfg.MaxAgentPingTimeouts = 5
	}
	if cfg.DeclineDelay <= 0 {
		cfg.DeclineDelay = allocator.DefaultRefuse
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	m := &Master{
		cfg: cfg, start: now,
		id:         fmt.Sprintf("%08x-%04x-aurorabox-master", uint32(now.Unix()), uint16(now.Nanosecond()>>10)),
		frameworks: map[string]*framework{},
		agents:     map[string]*agent{},
		offers:     map[string]*offer{},
		machines:   map[string]machineMode{},
	}
	m.alloc = allocator.New(allocator.Config{Weights: cfg.Weights, OfferTimeout: cfg.OfferTimeout,
		DefaultRefuse: cfg.DeclineDelay, OfferIDPrefix: m.id + "-O"})
	return m
}

// ID is the master's id; framework and agent ids derive from it.
func (m *Master) ID() string { return m.id }

// RegisterAgent adds an agent (or re-registers one with a known id) and
// offers its resources. It returns the agent's id. The tasks a
// re-registering agent reports and the master does not know (it restarted
// since) are taken back, with their frameworks.
func (m *Master) RegisterAgent(sub agentproto.Subscribe, link AgentLink) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := sub.Info
	id := info.GetID().GetValue()
	if id == "" {
		id = fmt.Sprintf("%s-S%d", m.id, m.nextAgent)
		m.nextAgent++
	}
	info.ID = &mesos.AgentID{Value: id}
	a, known := m.agents[id]
	if !known {
		a = &agent{id: id}
		m.agents[id] = a
		m.agentOrder = append(m.agentOrder, id)
	}
	a.info, a.pid, a.link, a.registered = info, sub.PID, link, m.cfg.Now()
	removed := a.unreachable
	a.unreachable = false
	a.total = mesos.Resources(info.Resources).Clone()
	if !known || removed {
		m.publishAgentAddedLocked(a)
	}
	m.alloc.AddAgent(id, a.total)
	m.recoverAgentTasksLocked(a, sub.Frameworks, sub.Tasks)
	m.cfg.Logger.Info("agent registered", "agent", id, "hostname", info.Hostname, "resources", a.total.String(), "tasks", len(sub.Tasks))
	m.allocateLocked()
	return id
}

// recoverAgentTasksLocked adds the live tasks an agent reports that the
// master does not know. A framework known only from its tasks is kept as
// recovered, without a connection, until it subscribes again.
func (m *Master) recoverAgentTasksLocked(a *agent, infos []mesos.FrameworkInfo, tasks []agentproto.Task) {
	byID := map[string]mesos.FrameworkInfo{}
	for _, fi := range infos {
		byID[fi.GetID().GetValue()] = fi
	}
	executors := map[string]bool{} // framework/executor already charged on this agent
	for _, fw := range m.frameworks {
		for _, t := range fw.tasks {
			if t.agent == a.id && t.info.Executor != nil {
				executors[fw.id+"/"+t.info.Executor.ExecutorID.Value] = true
			}
		}
	}
	for _, rt := range tasks {
		if rt.FrameworkID == "" || mesosutil.IsTerminal(rt.State) {
			continue
		}
		if m.isCompletedLocked(rt.FrameworkID) {
			continue // torn down: the agent is shutting it down
		}
		fw := m.frameworks[rt.FrameworkID]
		if fw == nil {
			fi, ok := byID[rt.FrameworkID]
			if !ok {
				continue
			}
			fi.ID = &mesos.FrameworkID{Value: rt.FrameworkID}
			fw = &framework{id: rt.FrameworkID, info: fi, recovered: true, tasks: map[string]*task{}}
			m.frameworks[fw.id] = fw
			m.addToAllocatorLocked(fw)
			m.cfg.Logger.Info("framework recovered from a re-registering agent", "framework", fw.id, "agent", a.id)
			m.publishFrameworkLocked(fw, true)
		}
		if t := fw.tasks[rt.Info.TaskID.Value]; t != nil {
			// Back from a partition: the agent's state is the truth again,
			// and reconciliation reports it (Aurora's PARTITIONED → RUNNING).
			if t.state == mesos.TASK_UNREACHABLE {
				t.state = rt.State
				m.publishTaskAddedLocked(t) // re-added, as Mesos does
			}
			continue
		}
		need := sumResources(rt.Info.Resources)
		if ex := rt.Info.Executor; ex != nil && !executors[fw.id+"/"+ex.ExecutorID.Value] {
			executors[fw.id+"/"+ex.ExecutorID.Value] = true
			need = need.Plus(sumResources(ex.Resources)...)
		}
		info := rt.Info
		info.AgentID = mesos.AgentID{Value: a.id}
		t := &task{info: info, fw: fw.id, agent: a.id, state: rt.State, res: need}
		fw.tasks[info.TaskID.Value] = t
		a.used = a.used.Plus(need...)
		m.publishTaskAddedLocked(t)
		m.alloc.Allocated(fw.id, a.id, need)
	}
}

func (m *Master) isCompletedLocked(fwID string) bool {
	for _, c := range m.completed {
		if c.id == fwID {
			return true
		}
	}
	return false
}

// allocateLocked rescinds the offers that timed out and offers the free
// resources of the agents that are connected and not DOWN, as the
// allocator decides, then arms the timer for its next deadline.
func (m *Master) allocateLocked() {
	now := m.cfg.Now()
	for _, a := range m.agents {
		m.alloc.SetAgentActive(a.id, a.link != nil && !m.agentDown(a))
	}
	for _, eo := range m.alloc.Expire(now) {
		if o := m.offers[eo.ID]; o != nil {
			m.cfg.Logger.Info("offer timed out; rescinding", "offer", o.id, "framework", o.fw, "agent", o.agent)
			m.dropOfferLocked(o)
			if fw := m.frameworks[o.fw]; fw != nil {
				fw.send(rescindEvent(o.id))
			}
		}
	}
	var order []string
	byFW := map[string][]mesos.Offer{}
	for _, eo := range m.alloc.Allocate(now) {
		o := &offer{id: eo.ID, fw: eo.Framework, agent: eo.Agent, res: eo.Resources}
		m.offers[o.id] = o
		a := m.agents[o.agent]
		a.offered = a.offered.Plus(o.res...)
		if byFW[o.fw] == nil {
			order = append(order, o.fw)
		}
		byFW[o.fw] = append(byFW[o.fw], *m.offerProto(o))
	}
	for _, fid := range order {
		m.frameworks[fid].send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: byFW[fid]}})
	}
	m.armAllocationLocked(now)
}

// armAllocationLocked sets the one allocation timer for the allocator's
// next deadline (a filter lapses, an offer times out).
func (m *Master) armAllocationLocked(now time.Time) {
	if m.allocTimer != nil {
		m.allocTimer.Stop()
		m.allocTimer = nil
	}
	next := m.alloc.Next()
	if next.IsZero() {
		return
	}
	m.allocTimer = time.AfterFunc(max(next.Sub(now), 0), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.allocateLocked()
	})
}

// addToAllocatorLocked tells the allocator of a framework's role and
// whether it takes revocable resources. A framework is in its role, or
// with MULTI_ROLE in the first of its roles.
func (m *Master) addToAllocatorLocked(fw *framework) {
	m.alloc.AddFramework(fw.id, offerRole(fw.info), hasCapability(fw.info, mesos.FrameworkInfo_Capability_REVOCABLE_RESOURCES))
}

func hasCapability(fi mesos.FrameworkInfo, t mesos.FrameworkInfo_Capability_Type) bool {
	for _, c := range fi.Capabilities {
		if c.Type == t {
			return true
		}
	}
	return false
}

func (m *Master) offerProto(o *offer) *mesos.Offer {
	a := m.agents[o.agent]
	var unavailability *mesos.Unavailability
	if _, u := m.agentMachine(a); u != nil {
		c := *u
		unavailability = &c
	}
	var alloc *mesos.Resource_AllocationInfo
	if fw := m.frameworks[o.fw]; fw != nil {
		alloc = offerAllocation(fw.info)
	}
	return &mesos.Offer{
		Unavailability: unavailability,
		ID:             mesos.OfferID{Value: o.id},
		FrameworkID:    mesos.FrameworkID{Value: o.fw},
		AgentID:        mesos.AgentID{Value: o.agent},
		Hostname:       a.info.Hostname,
		Resources:      allocated(o.res, alloc),
		AllocationInfo: alloc,
		Attributes:     a.info.Attributes,
		URL: &mesos.URL{
			Scheme:  "http",
			Address: mesos.Address{Hostname: &a.info.Hostname, Port: a.info.GetPort()},
			Path:    proto.String("/slave(1)"),
		},
	}
}

// removeOfferLocked returns an offer's resources to its agent, with no
// refuse filter.
func (m *Master) removeOfferLocked(o *offer) {
	m.alloc.Rescind(o.id)
	m.dropOfferLocked(o)
}

// dropOfferLocked forgets an offer the allocator is done with.
func (m *Master) dropOfferLocked(o *offer) {
	delete(m.offers, o.id)
	if a := m.agents[o.agent]; a != nil {
		a.offered = a.offered.Minus(o.res...)
	}
}

// rescindOffersLocked withdraws a framework's outstanding offers.
func (m *Master) rescindOffersLocked(fw *framework, notify bool) {
	for _, o := range m.offers {
		if o.fw != fw.id {
			continue
		}
		m.removeOfferLocked(o)
		if notify {
			fw.send(rescindEvent(o.id))
		}
	}
}

func rescindEvent(offerID string) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: offerID}}}
}

// sumResources adds resources, so that containment is checked on totals.
// Their allocation info (a MULTI_ROLE framework's tasks carry the role of
// their offer) is left out: agents' totals and offers are kept without.
func sumResources(rs ...[]mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		out = out.Plus(mesos.Resources(r).Clone().Unallocate()...)
	}
	return out
}
