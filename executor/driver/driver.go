// Package driver is a small client of the public Mesos v1 executor HTTP API
// (POST /api/v1/executor) built on mesos-go's executor calls: it
// subscribes, hands LAUNCH, KILL and SHUTDOWN events to a Handler, sends
// status updates and keeps each one until the agent acknowledges it.
//
// When the agent goes away (a restart, kill -9 included) the driver
// re-subscribes with its unacknowledged updates and unfinished tasks, as
// Mesos requires, for as long as MESOS_RECOVERY_TIMEOUT allows when the
// framework checkpoints (MESOS_CHECKPOINT=1); otherwise losing the agent
// ends the executor, as it does under Mesos. Both aurorabox executors, the
// built-in command executor and the Thermos-equivalent, use it, and both
// therefore run under a real Mesos agent unchanged.
package driver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// Handler receives the agent's events. Its methods run on the driver's
// event loop and must not block for long: start work in goroutines.
type Handler interface {
	// Launch starts a task. ctx is Run's: it ends when the executor stops
	// (not when a subscription does), and bounds the task's work.
	Launch(ctx context.Context, task mesos.TaskInfo)
	Kill(task mesos.TaskID, policy *mesos.KillPolicy)
	// Shutdown asks the executor to kill all its tasks and exit within
	// the agent's shutdown grace period (Config.ExecutorShutdownGracePeriod).
	Shutdown()
}

// ErrAgentLost is returned by Run when the agent stayed unreachable for
// longer than the recovery timeout, or at all without checkpointing.
var ErrAgentLost = errors.New("lost the agent")

// Driver is one executor's connection to its agent.
type Driver struct {
	cfg    config.Config
	logger *slog.Logger
	send   calls.SenderFunc
	sub    calls.SenderFunc

	mu       sync.Mutex
	tasks    map[string]mesos.TaskInfo       // launched and not yet terminal
	unacked  map[string]executor.Call_Update // uuid → update
	order    []string                        // uuids in sending order
	finished bool                            // Finish called
	done     chan struct{}                   // closed once finished and all acknowledged
	doneOnce sync.Once
}

// EnvAuthenticationToken is where the agent puts the executor's token;
// New reads it and removes it from the environment.
const EnvAuthenticationToken = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"

// New prepares a driver for the executor described by cfg (usually
// config.FromEnv()).
func New(cfg config.Config, logger *slog.Logger) *Driver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cliOpts := []httpcli.Opt{httpcli.Endpoint(endpoint.String()), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10 * time.Second)))}
	// The agent's token for this executor (Mesos' HTTP executor
	// authentication), kept from the processes the executor starts.
	if token := os.Getenv(EnvAuthenticationToken); token != "" {
		os.Unsetenv(EnvAuthenticationToken)
		cliOpts = append(cliOpts, httpcli.RequestOptions(httpcli.Header("Authorization", "Bearer "+token)))
	}
	cli := httpcli.New(cliOpts...)
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	return &Driver{
		cfg: cfg, logger: logger,
		send:    calls.SenderWith(httpexec.NewSender(cli.Send), opts...),
		sub:     calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...),
		tasks:   map[string]mesos.TaskInfo{},
		unacked: map[string]executor.Call_Update{},
		done:    make(chan struct{}),
	}
}

// Config is the executor's environment.
func (d *Driver) Config() config.Config { return d.cfg }

// Run subscribes and dispatches events to h until Finish has been called
// and every update is acknowledged (nil), ctx ends (its error), or the
// agent is lost for good (ErrAgentLost).
func (d *Driver) Run(ctx context.Context, h Handler) error {
	lastSubscribed := time.Now()
	for {
		subscribed, err := d.session(ctx, h)
		if subscribed {
			// Recovery time counts from the last time we held a
			// subscription, not from the last failed attempt.
			lastSubscribed = time.Now()
		}
		select {
		case <-d.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if !d.cfg.Checkpoint {
			return fmt.Errorf("%w (the framework does not checkpoint): %v", ErrAgentLost, err)
		}
		if time.Since(lastSubscribed) > d.cfg.RecoveryTimeout {
			return fmt.Errorf("%w for longer than %s: %v", ErrAgentLost, d.cfg.RecoveryTimeout, err)
		}
		d.logger.Warn("agent connection lost; re-subscribing", "err", err)
		select {
		case <-time.After(min(d.cfg.SubscriptionBackoffMax, time.Second)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// session subscribes and handles events until the stream ends.
func (d *Driver) session(ctx context.Context, h Handler) (subscribed bool, err error) {
	d.mu.Lock()
	var tasks []mesos.TaskInfo
	for _, t := range d.tasks {
		tasks = append(tasks, t)
	}
	var updates []executor.Call_Update
	for _, id := range d.order {
		updates = append(updates, d.unacked[id])
	}
	d.mu.Unlock()
	resp, err := d.sub.Send(ctx, calls.NonStreaming(calls.Subscribe(tasks, updates)))
	if err != nil {
		return false, err
	}
	stream := mesosutil.DecodeEvents[executor.Event](resp)
	defer stream.Close()
	for {
		select {
		case <-d.done:
			return true, nil
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-stream.Err:
			if errors.Is(err, io.EOF) {
				err = errors.New("event stream ended")
			}
			return true, err
		case ev := <-stream.Events:
			switch ev.Type {
			case executor.Event_SUBSCRIBED:
				d.logger.Info("subscribed to the agent", "agent", ev.Subscribed.AgentInfo.GetHostname())
			case executor.Event_LAUNCH:
				d.mu.Lock()
				_, dup := d.tasks[ev.Launch.Task.TaskID.Value]
				d.tasks[ev.Launch.Task.TaskID.Value] = ev.Launch.Task
				d.mu.Unlock()
				if !dup {
					h.Launch(ctx, ev.Launch.Task)
				}
			case executor.Event_KILL:
				h.Kill(ev.Kill.TaskID, ev.Kill.KillPolicy)
			case executor.Event_SHUTDOWN:
				h.Shutdown()
			case executor.Event_ACKNOWLEDGED:
				d.acknowledged(ev.Acknowledged.UUID)
			case executor.Event_ERROR:
				return true, fmt.Errorf("agent error: %s", ev.Error.GetMessage())
			}
		}
	}
}

// Update sends a status update for a task, stamped with a fresh UUID, the
// time and this executor, and keeps it until the agent acknowledges it.
// Updates after a task's terminal one are dropped.
func (d *Driver) Update(task mesos.TaskID, state mesos.TaskState, reason *mesos.TaskStatus_Reason, msg string, data []byte) {
	uuid := make([]byte, 16)
	rand.Read(uuid)
	now := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID: task, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), Reason: reason,
		ExecutorID: &mesos.ExecutorID{Value: d.cfg.ExecutorID}, UUID: uuid, Timestamp: &now, Data: data,
	}
	if msg != "" {
		st.Message = &msg
	}
	d.mu.Lock()
	if _, live := d.tasks[task.Value]; !live {
		d.mu.Unlock()
		d.logger.Warn("update for a task that is not running dropped", "task", task.Value, "state", state)
		return
	}
	if mesosutil.IsTerminal(state) {
		delete(d.tasks, task.Value)
	}
	u := calls.Update(st)
	d.unacked[string(uuid)] = *u.Update
	d.order = append(d.order, string(uuid))
	d.mu.Unlock()
	d.logger.Info("status update", "task", task.Value, "state", state, "message", msg)
	if err := calls.SendNoData(context.Background(), d.send, calls.NonStreaming(u)); err != nil {
		// It stays unacknowledged and goes out again with the next SUBSCRIBE.
		d.logger.Warn("status update not sent", "state", state, "err", err)
	}
}

func (d *Driver) acknowledged(uuid []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.unacked, string(uuid))
	for i, id := range d.order {
		if id == string(uuid) {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
	d.checkDoneLocked()
}

// Finish lets Run return once every update sent so far is acknowledged.
func (d *Driver) Finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = true
	d.checkDoneLocked()
}

func (d *Driver) checkDoneLocked() {
	if d.finished && len(d.unacked) == 0 {
		d.doneOnce.Do(func() { close(d.done) })
	}
}
