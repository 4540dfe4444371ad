// Package supervise runs an ordered list of components as child processes:
// it starts each one and waits for its readiness probe before starting the
// next, restarts crashed ones with exponential backoff, and stops them in
// reverse order (SIGTERM to the process group, SIGKILL after a grace period).
//
// Orphans. Children are started with PR_SET_PDEATHSIG=SIGTERM from a
// dedicated OS thread, so they get SIGTERM when the supervisor dies, even by
// kill -9. Grandchildren (executors and task processes) are not covered by
// that, so every child also carries a marker environment variable naming the
// appliance, and Sweep finds and kills any process that still carries it;
// components also carry RoleVar, so that SweepComponents can tell them from
// the executors and tasks they started. The appliance sweeps the components
// at `up` (leftovers of a crashed supervisor: the tasks survive it, and the
// agent recovers them) and everything at `down`.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
)

// Probe reports whether a component is ready to serve.
type Probe func(ctx context.Context) error

// Spec describes one component.
type Spec struct {
	Name         string
	Path         string   // executable
	Args         []string // arguments, without argv[0]
	Env          []string // complete environment of the child
	Dir          string   // working directory
	Log          string   // file that gets the child's stdout and stderr
	Addr         string   // shown in status
	Probe        Probe    // nil: ready once started
	ReadyTimeout time.Duration
	StopGrace    time.Duration
	// DeathSignal is what the component gets when the supervisor dies
	// (PR_SET_PDEATHSIG); SIGTERM when zero.
	DeathSignal syscall.Signal
}

// Clock is the time source; tests may replace it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune the supervisor. Zero values get the defaults in brackets.
type Options struct {
	Logger         *slog.Logger  // [discard]
	Clock          Clock         // [real time]
	BackoffInitial time.Duration // delay before the first restart [100ms]
	BackoffMax     time.Duration // [30s]
	StableAfter    time.Duration // a run this long resets the backoff [10s]
	HealthInterval time.Duration // how often running components are probed [1s]
}

// Supervisor owns the component processes.
type Supervisor struct {
	opts Options

	mu       sync.Mutex
	procs    []*proc
	stopping bool
	wg       sync.WaitGroup
	quit     chan struct{}
}

// New returns a supervisor with no components.
func New(opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.BackoffInitial <= 0 {
		opts.BackoffInitial = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = 10 * time.Second
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = time.Second
	}
	s := &Supervisor{opts: opts, quit: make(chan struct{})}
	s.wg.Add(1)
	go s.healthLoop()
	return s
}

// proc is one component and its current run. Fields are guarded by Supervisor.mu.
type proc struct {
	spec      Spec
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the current run has been waited for
	exitErr   error
	startedAt time.Time
	restarts  int
	health    status.Health
	lastErr   string
	stop      chan struct{} // closed to end the restart loop
	// restarting is non-nil while Restart replaces the process on purpose:
	// monitor waits for it to be closed instead of treating the exit as a
	// crash.
	restarting chan struct{}
}

// Start starts the specs in order, each after the previous one is ready. If
// one fails, Start stops the ones it started (in reverse order) and returns an
// error that names the component and its log file.
func (s *Supervisor) Start(ctx context.Context, specs []Spec) error {
	for _, spec := range specs {
		p := &proc{spec: spec, health: status.Starting, stop: make(chan struct{})}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return errors.New("supervisor is stopping")
		}
		s.procs = append(s.procs, p)
		err := s.spawn(p)
		s.mu.Unlock()
		if err == nil {
			err = s.awaitReady(ctx, p)
		}
		if err != nil {
			s.Stop()
			return err
		}
		s.opts.Logger.Info("component ready", "component", spec.Name, "pid", p.pid(), "addr", spec.Addr)
		s.wg.Add(1)
		go s.monitor(p)
	}
	return nil
}

// spawn starts one run of p. Caller holds s.mu.
func (s *Supervisor) spawn(p *proc) error {
	log, err := os.OpenFile(p.spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.spec.Name, err)
	}
	defer log.Close() // the child has its own copy
	fmt.Fprintf(log, "--- %s aurorabox: starting %s\n", s.opts.Clock.Now().Format(time.RFC3339Nano), p.spec.Name)
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = append(p.spec.Env[:len(p.spec.Env):len(p.spec.Env)], RoleVar+"="+p.spec.Name)
	cmd.Dir = p.spec.Dir
	cmd.Stdout = log
	cmd.Stderr = log
	death := p.spec.DeathSignal
	if death == 0 {
		death = syscall.SIGTERM
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // its own group, so that stop reaches its children too
		Pdeathsig: death,
	}
	if err := startPinned(cmd); err != nil {
		return fmt.Errorf("%s: start %s: %w (log: %s)", p.spec.Name, p.spec.Path, err, p.spec.Log)
	}
	p.cmd = cmd
	p.startedAt = s.opts.Clock.Now()
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		p.exitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (p *proc) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// awaitReady polls the probe until it passes, the process exits, or the
// component's ready timeout passes.
func (s *Supervisor) awaitReady(ctx context.Context, p *proc) error {
	timeout := p.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := s.opts.Clock.After(timeout)
	s.mu.Lock()
	exited := p.exited
	s.mu.Unlock()
	var lastErr error
	for {
		if p.spec.Probe == nil {
			lastErr = nil
		} else {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			lastErr = p.spec.Probe(pctx)
			cancel()
		}
		if lastErr == nil {
			s.mu.Lock()
			p.health = status.Healthy
			s.mu.Unlock()
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			err := p.exitErr
			s.mu.Unlock()
			return fmt.Errorf("%s exited during startup (%v); see %s", p.spec.Name, exitReason(err), p.spec.Log)
		case <-deadline:
			return fmt.Errorf("%s not ready after %s (last probe: %v); see %s", p.spec.Name, timeout, lastErr, p.spec.Log)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", p.spec.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// monitor restarts p whenever its process ends, until p.stop is closed.
func (s *Supervisor) monitor(p *proc) {
	defer s.wg.Done()
	backoff := s.opts.BackoffInitial
	for {
		s.mu.Lock()
		exited := p.exited
		s.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-exited:
		}
		s.mu.Lock()
		if s.stopping || isClosed(p.stop) {
			s.mu.Unlock()
			return
		}
		if rs := p.restarting; rs != nil {
			// A restart asked for: Restart starts the next run.
			s.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-rs:
			}
			backoff = s.opts.BackoffInitial
			continue
		}
		if p.exited != exited {
			s.mu.Unlock()
			continue // Restart already started the next run
		}
		ran := s.opts.Clock.Now().Sub(p.startedAt)
		if ran >= s.opts.StableAfter {
			backoff = s.opts.BackoffInitial
		}
		p.health = status.Unhealthy
		p.lastErr = exitReason(p.exitErr)
		s.mu.Unlock()
		s.opts.Logger.Warn("component exited; restarting", "component", p.spec.Name, "reason", exitReason(p.exitErr), "after", backoff)

		for {
			select {
			case <-p.stop:
				return
			case <-s.opts.Clock.After(backoff):
			}
			backoff = min(backoff*2, s.opts.BackoffMax)
			s.mu.Lock()
			if s.stopping || isClosed(p.stop) {
				s.mu.Unlock()
				return
			}
			err := s.spawn(p)
			if err == nil {
				p.restarts++
				p.health = status.Starting
			} else {
				p.lastErr = err.Error()
			}
			s.mu.Unlock()
			if err == nil {
				break
			}
			s.opts.Logger.Error("restart failed", "component", p.spec.Name, "err", err)
		}
	}
}

// healthLoop probes running components, so that status reflects a component
// that is up but not answering.
func (s *Supervisor) healthLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.quit:
			return
		case <-s.opts.Clock.After(s.opts.HealthInterval):
		}
		s.mu.Lock()
		procs := append([]*proc(nil), s.procs...)
		s.mu.Unlock()
		for _, p := range procs {
			s.mu.Lock()
			alive := p.cmd != nil && !isClosed(p.exited)
			probe := p.spec.Probe
			// Startup readiness is awaitReady's job.
			skip := !alive || probe == nil || p.health == status.Stopped || (p.health == status.Starting && p.restarts == 0)
			s.mu.Unlock()
			if skip {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := probe(ctx)
			cancel()
			s.mu.Lock()
			if p.health != status.Stopped && !isClosed(p.exited) {
				if err == nil {
					p.health = status.Healthy
				} else if p.health == status.Healthy || s.opts.Clock.Now().Sub(p.startedAt) > p.spec.ReadyTimeout {
					p.health = status.Unhealthy
					p.lastErr = "probe: " + err.Error()
				}
			}
			s.mu.Unlock()
		}
	}
}

// ErrUnknownComponent is returned by Restart for a name no spec has.
var ErrUnknownComponent = errors.New("unknown component")

// Names lists the components, in start order.
func (s *Supervisor) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.procs))
	for i, p := range s.procs {
		out[i] = p.spec.Name
	}
	return out
}

// Restart stops the named component (SIGTERM to its process group, SIGKILL
// after its grace period), starts it again from its spec's executable (so a
// rebuilt binary takes effect) and waits until its probe passes. Other
// components keep running. Processes that left the component's group (task
// executors, which run in their own sessions) are not touched.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	s.mu.Lock()
	var p *proc
	for _, q := range s.procs {
		if q.spec.Name == name {
			p = q
		}
	}
	switch {
	case s.stopping:
		s.mu.Unlock()
		return errors.New("supervisor is stopping")
	case p == nil:
		s.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownComponent, name)
	case p.restarting != nil:
		s.mu.Unlock()
		return fmt.Errorf("%s is already restarting", name)
	case isClosed(p.stop):
		s.mu.Unlock()
		return fmt.Errorf("%s is stopped", name)
	}
	rs := make(chan struct{})
	p.restarting = rs
	cmd, exited := p.cmd, p.exited
	p.health = status.Starting
	s.mu.Unlock()
	s.opts.Logger.Info("restarting component", "component", name)

	if cmd != nil && !isClosed(exited) {
		s.terminate(p, cmd.Process.Pid, exited)
	}
	s.mu.Lock()
	var err error
	if s.stopping {
		err = errors.New("supervisor is stopping")
	} else if err = s.spawn(p); err != nil {
		p.health = status.Unhealthy
		p.lastErr = err.Error()
	} else {
		p.lastErr = ""
	}
	p.restarting = nil
	s.mu.Unlock()
	close(rs) // monitor resumes: on a spawn error it retries with backoff
	if err != nil {
		return err
	}
	if err := s.awaitReady(ctx, p); err != nil {
		s.mu.Lock()
		p.health = status.Unhealthy
		p.lastErr = err.Error()
		s.mu.Unlock()
		return err
	}
	s.opts.Logger.Info("component restarted", "component", name, "pid", p.pid())
	return nil
}

// terminate sends SIGTERM to the group of pid, and SIGKILL after p's grace
// period, and waits for the leader to exit.
func (s *Supervisor) terminate(p *proc, pid int, exited chan struct{}) {
	grace := p.spec.StopGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
		// The leader is gone; finish off anything left in its group.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return
	case <-s.opts.Clock.After(grace):
	}
	s.opts.Logger.Warn("component ignored SIGTERM; killing", "component", p.spec.Name, "grace", grace)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}

// Stop stops all components in reverse start order and waits for them.
// It is safe to call more than once.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.stopping = true
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	close(s.quit)
	for i := len(procs) - 1; i >= 0; i-- {
		s.stopProc(procs[i])
	}
	s.wg.Wait()
}

// StopExcept stops, in reverse start order, every component not named in
// keep; Stop stops the others later. It lets what the components started
// (task processes) end while a component they need (ZooKeeper, where they
// leave their ServerSets) still runs.
func (s *Supervisor) StopExcept(keep ...string) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		if !slices.Contains(keep, procs[i].spec.Name) {
			s.stopProc(procs[i])
		}
	}
}

func (s *Supervisor) stopProc(p *proc) {
	s.mu.Lock()
	if isClosed(p.stop) {
		s.mu.Unlock()
		return // stopped already (StopExcept)
	}
	close(p.stop)
	p.health = status.Stopped
	cmd, exited := p.cmd, p.exited
	s.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return
	}
	s.terminate(p, cmd.Process.Pid, exited)
	s.opts.Logger.Info("component stopped", "component", p.spec.Name)
}

// Status returns every component's state, in start order.
func (s *Supervisor) Status() []status.Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock.Now()
	out := make([]status.Component, 0, len(s.procs))
	for _, p := range s.procs {
		st := status.Component{
			Name: p.spec.Name, Address: p.spec.Addr, Health: p.health,
			Restarts: p.restarts, Log: p.spec.Log, LastError: p.lastErr,
		}
		if p.cmd != nil && !isClosed(p.exited) {
			st.PID = p.pid()
			st.StartedAt = p.startedAt
			st.UptimeSeconds = now.Sub(p.startedAt).Seconds()
		}
		out = append(out, st)
	}
	return out
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
	}
	return err.Error()
}
