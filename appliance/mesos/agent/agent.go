// Package agent is aurorabox's Mesos-compatible agent. It registers with the
// master (package master's internal agent API), launches executors in
// sandboxes laid out as a Mesos agent's work_dir, and speaks the public Mesos
// v1 executor API (POST /api/v1/executor) to them, so that any v1 executor,
// ours or mesos-go's, runs under it. Plain command tasks run under the
// built-in command executor (`aurorabox command-executor`), as they do under
// Mesos. Status updates go through a status update manager that resends each
// task's oldest unacknowledged update until the framework acknowledges it.
// Operators get /state, /flags, /health, the sandbox-confined /files API and
// the read-only calls of Mesos' v1 operator API (POST /api/v1, operator.go).
package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/sandboxgc"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/atomicfile"
	"github.com/aurorabox/aurorabox/limits"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Config configures an agent. Zero values get the defaults noted.
type Config struct {
	ListenAddr string // e.g. 127.0.0.1:5051
	Hostname   string // default: the listen host
	MasterURL  string // http://host:port of the master
	WorkDir    string // Mesos --work_dir
	// AuthenticateExecutors makes every call of the executor API carry
	// the calling executor's token (EnvExecutorToken), as Mesos'
	// --authenticate_http_executors: without it any local user could send
	// updates for any task.
	AuthenticateExecutors bool
	// MasterSecret is the agent secret the master checks on every request
	// of the internal agent protocol (master.Config.AgentSecret); empty
	// for a master that accepts any agent (--insecure-agents).
	MasterSecret []byte
	// Name tells apart agents that share one work dir (simulated hosts of
	// `up --agents N`): each keeps its own id link, meta/slaves/latest-<name>.
	// Empty for a lone agent (meta/slaves/latest, as Mesos).
	Name string
	// Resources override the detected ones by name, as Mesos' --resources.
	Resources []mesos.Resource
	// Oversubscribed are revocable resources the agent offers besides
	// Resources, a fixed estimate as Mesos' FixedResourceEstimator (see
	// ParseOversubscribed). The master offers them only to frameworks with
	// the REVOCABLE_RESOURCES capability.
	Oversubscribed []mesos.Resource
	Attributes     []mesos.Attribute
	// Exe is the aurorabox binary; the built-in command executor is
	// `Exe command-executor`.
	Exe string
	// ExtraEnv is added to every executor's environment (the appliance's
	// process marker, for one).
	ExtraEnv []string
	// ExecutorShutdownGrace is how long an executor has to exit after
	// SHUTDOWN before it is killed; default 5s, as Mesos.
	ExecutorShutdownGrace time.Duration
	// ExecutorRegistrationTimeout: an executor that has not subscribed by
	// then is killed; default 1m, as Aurora's Vagrant agent.
	ExecutorRegistrationTimeout time.Duration
	// RecoveryTimeout: after an agent restart, an executor that has not
	// re-subscribed by then is killed; default 15m, as Mesos.
	RecoveryTimeout time.Duration
	// StatusUpdateRetryInterval is how long an unacknowledged status update
	// waits before it is sent again; it doubles on each retry, up to a
	// minute. Default 2s.
	StatusUpdateRetryInterval time.Duration
	// GCDelay is how long a terminated executor's sandbox is kept when the
	// disk is empty; GCDiskHeadroom (a fraction of the disk, 0 to 1) and
	// DiskWatchInterval tune how fast a filling disk shortens it. See
	// gc.go; New refuses values out of range (sandboxgc.Check). Zero durations
	// take the defaults (sandboxgc.DefaultDelay, ...); a zero GCDiskHeadroom means
	// no headroom, except in a Config that sets no GCDelay either, which
	// gets Mesos' defaults for both.
	GCDelay           time.Duration
	GCDiskHeadroom    float64
	DiskWatchInterval time.Duration
	// DiskUsage measures the used fraction of the work dir's file system;
	// tests replace it.
	DiskUsage func(dir string) float64
	// EnableCFS enforces cpus as a CFS quota too, not only as cpu shares
	// (Mesos' --cgroups_enable_cfs; off by default there and here: a hard
	// quota of a task's 0.1 cpus throttles even its executor's start-up).
	EnableCFS bool
	// PidsLimit caps each container's processes and threads; default
	// DefaultPidsLimit.
	PidsLimit int64
	// Isolator puts containers in cgroups; default: one rooted at
	// isolation.AgentRoot(WorkDir, Name), or none where cgroups are unavailable.
	Isolator *isolation.Isolator
	// IgnorePings, if set and true, leaves the master's pings unanswered,
	// as a hung agent would (tests).
	IgnorePings func() bool
	// FilesLimiter bounds the /files requests in flight per client and in
	// total; default sandboxfs.NewLimiter(0, 0) (its defaults).
	FilesLimiter *sandboxfs.Limiter
	// BuildVersion is aurorabox's own version, shown in the build fields
	// of /version, /state and the v1 API's GET_VERSION (mesosutil.VersionJSON).
	BuildVersion string
	Logger       *slog.Logger
	Now          func() time.Time
}

// Agent is a running agent.
type Agent struct {
	cfg     Config
	client  *http.Client
	start   time.Time
	execKey []byte // signs executor tokens, with Config.AuthenticateExecutors

	mu         sync.Mutex
	id         string
	info       mesos.AgentInfo
	frameworks map[string]*frameworkState
	registered bool
	updates    *updateManager
	iso        *isolation.Isolator
	notices    chan masterNotice // best-effort messages for the master
	ponging    atomic.Bool       // a pong is on its way to the master
}

type frameworkState struct {
	info      mesos.FrameworkInfo
	executors map[string]*executorState
	completed []*executorState
	// terminating is set once the master shut the framework down: its
	// executors are going, and their updates have nobody to go to.
	terminating bool
}

// masterNotice is a message for the master that, as in Mesos, is sent once
// and not retried: an executor's framework message, an executor's exit.
type masterNotice struct {
	path string
	body any
}

// New prepares an agent; Run connects it and serves its API.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FilesLimiter == nil {
		cfg.FilesLimiter = sandboxfs.NewLimiter(0, 0)
	}
	if cfg.ExecutorShutdownGrace <= 0 {
		cfg.ExecutorShutdownGrace = 5 * time.Second
	}
	if cfg.RecoveryTimeout <= 0 {
		cfg.RecoveryTimeout = 15 * time.Minute
	}
	if cfg.ExecutorRegistrationTimeout <= 0 {
		cfg.ExecutorRegistrationTimeout = time.Minute
	}
	if cfg.GCDelay == 0 {
		cfg.GCDelay = sandboxgc.DefaultDelay
		if cfg.GCDiskHeadroom == 0 {
			cfg.GCDiskHeadroom = sandboxgc.DefaultDiskHeadroom
		}
	}
	if cfg.DiskWatchInterval == 0 {
		cfg.DiskWatchInterval = sandboxgc.DefaultDiskWatchInterval
	}
	if err := sandboxgc.Check(cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskWatchInterval); err != nil {
		return nil, fmt.Errorf("sandbox garbage collection: %w", err)
	}
	if cfg.DiskUsage == nil {
		cfg.DiskUsage = diskUsage
	}
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.Isolator == nil {
		iso, err := isolation.New(isolation.AgentRoot(cfg.WorkDir, cfg.Name), cfg.Logger)
		if err != nil {
			return nil, err
		}
		cfg.Isolator = iso
	}
	// Search-only for others: a task's user reaches its own sandbox (0700,
	// its own) by name, and lists nothing on the way (see
	// startExecutorLocked).
	if err := mkdirSearchable(cfg.WorkDir, cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	// The meta dir (every task's config in its checkpoints) is the agent's
	// alone, also when an older agent made it 0755.
	if err := os.Chmod(filepath.Join(cfg.WorkDir, "meta"), 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	cfg.Resources = mergeResources(DetectResources(cfg.WorkDir), cfg.Resources)
	for _, r := range cfg.Oversubscribed {
		if r.Revocable == nil {
			return nil, fmt.Errorf("oversubscribed resource %s is not revocable", r.Name)
		}
	}
	cfg.Resources = append(cfg.Resources, cfg.Oversubscribed...)
	host, portStr, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.ListenAddr, err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = host
	}
	port, _ := strconv.Atoi(portStr)
	port32 := int32(port)
	a := &Agent{
		cfg:        cfg,
		client:     &http.Client{Timeout: 10 * time.Second},
		start:      cfg.Now(),
		frameworks: map[string]*frameworkState{},
		iso:        cfg.Isolator,
		info:       mesos.AgentInfo{Hostname: cfg.Hostname, Port: &port32, Resources: cfg.Resources, Attributes: cfg.Attributes},
		notices:    make(chan masterNotice, 1024),
	}
	if cfg.AuthenticateExecutors {
		k, err := loadExecutorKey(a.executorKeyFile())
		if err != nil {
			return nil, fmt.Errorf("executor authentication: %w", err)
		}
		a.execKey = k
	}
	a.id = a.loadAgentID()
	a.updates = newUpdateManager(a.forwardUpdate, cfg.StatusUpdateRetryInterval, cfg.Logger)
	if a.id != "" {
		a.updates.setCheckpoint(filepath.Join(a.agentMetaDir(), "updates.json"))
		if err := a.updates.recover(); err != nil {
			return nil, fmt.Errorf("recover status updates: %w", err)
		}
		a.recoverExecutors()
	}
	a.destroyOrphanContainers()
	return a, nil
}

// metaDir holds what must survive an agent restart, as Mesos' meta dir does.
func (a *Agent) metaDir() string { return filepath.Join(a.cfg.WorkDir, "meta", "slaves") }

// idLink is the name of the symlink to this agent's meta dir.
func (a *Agent) idLink() string {
	if a.cfg.Name == "" {
		return "latest"
	}
	return "latest-" + a.cfg.Name
}

func (a *Agent) loadAgentID() string {
	target, err := os.Readlink(filepath.Join(a.metaDir(), a.idLink()))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

func (a *Agent) saveAgentID(id string) error {
	if err := os.MkdirAll(filepath.Join(a.metaDir(), id), 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(a.metaDir(), "."+a.idLink()+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(id, tmp); err != nil {
		return err
	}
	return atomicfile.Rename(tmp, filepath.Join(a.metaDir(), a.idLink()))
}

// pid is the agent's libprocess-style pid, shown in the master's state.
func (a *Agent) pid() string { return "slave(1)@" + a.cfg.ListenAddr }

// Run registers with the master (again whenever the connection drops) and
// serves the agent's HTTP API on ln until ctx is done.
func (a *Agent) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	// Run returns only after its loops end: they write checkpoints (an ack
	// from the master, a retried update), and callers remove the work
	// directory next.
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){a.masterLoop, a.updates.retryLoop, a.gcLoop, a.noticeLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	err := srv.Serve(ln)
	if err != nil && err != http.ErrServerClosed {
		return err // the loops end with ctx
	}
	wg.Wait()
	return nil
}

// masterLoop keeps the agent registered, reconnecting with backoff.
func (a *Agent) masterLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := a.connectMaster(ctx)
		a.mu.Lock()
		a.registered = false
		a.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		a.cfg.Logger.Warn("master connection lost; reconnecting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (a *Agent) connectMaster(ctx context.Context) error {
	a.mu.Lock()
	info := a.info
	if a.id != "" {
		info.ID = &mesos.AgentID{Value: a.id}
	}
	sub := agentproto.Subscribe{Info: info, PID: a.pid()}
	a.reportTasksLocked(&sub)
	a.mu.Unlock()
	body, _ := json.Marshal(sub)
	req, err := http.NewRequestWithContext(ctx, "POST", a.cfg.MasterURL+agentproto.SubscribePath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	a.authorize(req)
	// The stream stays open for as long as we are registered: no timeout.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("master refused registration: %s: %s", resp.Status, msg)
	}
	r := bufio.NewReader(resp.Body)
	for {
		frame, err := readFrame(r)
		if err != nil {
			return err
		}
		var c agentproto.Command
		if err := json.Unmarshal(frame, &c); err != nil {
			return fmt.Errorf("bad command from master: %w", err)
		}
		a.handleCommand(c)
	}
}

// reportTasksLocked adds the live tasks and their frameworks to a
// (re-)registration, so that a master that restarted knows them again.
func (a *Agent) reportTasksLocked(sub *agentproto.Subscribe) {
	for fwID, fs := range a.frameworks {
		if fs.terminating {
			continue
		}
		n := len(sub.Tasks)
		for _, ex := range fs.executors {
			if ex.shutdown {
				continue
			}
			for _, t := range ex.queued {
				sub.Tasks = append(sub.Tasks, agentproto.Task{FrameworkID: fwID, Info: t, State: mesos.TASK_STAGING})
			}
			for _, t := range ex.tasks {
				sub.Tasks = append(sub.Tasks, agentproto.Task{FrameworkID: fwID, Info: t.info, State: t.state})
			}
		}
		if len(sub.Tasks) > n {
			sub.Frameworks = append(sub.Frameworks, fs.info)
		}
	}
}

// readFrame reads one RecordIO record: "<length>\n<bytes>".
func readFrame(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || n < 0 || n > limits.AgentFrameBytes {
		return nil, fmt.Errorf("bad record length %q", line)
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(r, buf)
	return buf, err
}

func (a *Agent) handleCommand(c agentproto.Command) {
	switch c.Type {
	case agentproto.CmdRegistered:
		a.mu.Lock()
		first := a.id != c.AgentID
		a.id = c.AgentID
		a.info.ID = &mesos.AgentID{Value: c.AgentID}
		a.registered = true
		a.mu.Unlock()
		if first {
			if err := a.saveAgentID(c.AgentID); err != nil {
				a.cfg.Logger.Error("checkpoint agent id", "err", err)
			}
			a.updates.setCheckpoint(filepath.Join(a.metaDir(), c.AgentID, "updates.json"))
		}
		a.cfg.Logger.Info("registered with master", "agent", c.AgentID)
		a.updates.resendAll()
	case agentproto.CmdLaunch:
		if c.Framework != nil {
			a.launch(*c.Framework, c.Tasks, c.RootAllowed)
		}
	case agentproto.CmdKill:
		a.kill(c.FrameworkID, c.TaskID)
	case agentproto.CmdAcknowledge:
		a.updates.acknowledge(c.FrameworkID, c.TaskID, c.UUID)
	case agentproto.CmdShutdownFramework:
		a.shutdownFramework(c.FrameworkID)
	case agentproto.CmdShutdownExecutor:
		a.shutdownExecutorByID(c.FrameworkID, c.ExecutorID)
	case agentproto.CmdMessage:
		a.frameworkMessage(c.FrameworkID, c.ExecutorID, c.Data)
	case agentproto.CmdHeartbeat:
		a.pong()
	}
}

// pong answers the master's ping, off the command stream. A pong still on
// its way answers this ping too.
func (a *Agent) pong() {
	if a.cfg.IgnorePings != nil && a.cfg.IgnorePings() {
		return
	}
	if !a.ponging.CompareAndSwap(false, true) {
		return
	}
	a.mu.Lock()
	id := a.id
	a.mu.Unlock()
	go func() {
		defer a.ponging.Store(false)
		if err := a.postMaster(agentproto.PongPath, agentproto.Pong{AgentID: id}); err != nil {
			a.cfg.Logger.Warn("ping not answered", "err", err)
		}
	}()
}

// notifyMaster queues a best-effort message for the master; it is dropped
// if the queue is full or the agent is not registered when it is sent.
func (a *Agent) notifyMaster(path string, body any) {
	select {
	case a.notices <- masterNotice{path, body}:
	default:
		a.cfg.Logger.Warn("dropping a message for the master: too many queued", "path", path)
	}
}

func (a *Agent) noticeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-a.notices:
			a.mu.Lock()
			ok := a.registered
			a.mu.Unlock()
			if !ok {
				a.cfg.Logger.Warn("dropping a message for the master: not registered", "path", n.path)
				continue
			}
			if err := a.postMaster(n.path, n.body); err != nil {
				a.cfg.Logger.Warn("message for the master not delivered", "path", n.path, "err", err)
			}
		}
	}
}

// authorize adds the agent secret to a request for the master.
func (a *Agent) authorize(req *http.Request) {
	if len(a.cfg.MasterSecret) > 0 {
		req.Header.Set("Authorization", agentproto.Authorization(a.cfg.MasterSecret))
	}
}

func (a *Agent) postMaster(path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", a.cfg.MasterURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	a.authorize(req)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("master: %s", resp.Status)
	}
	return nil
}

// forwardUpdate sends one status update to the master.
func (a *Agent) forwardUpdate(fwID string, st mesos.TaskStatus) error {
	a.mu.Lock()
	id, ok := a.id, a.registered
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("not registered")
	}
	return a.postMaster(agentproto.UpdatePath, agentproto.Update{AgentID: id, FrameworkID: fwID, Status: st})
}
