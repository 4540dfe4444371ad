package scheduler

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// framework is the scheduler's connection to the Mesos master, through
// mesos-go's v1 HTTP scheduler client (it follows the master's redirects
// and keeps the Mesos-Stream-Id).
type framework struct {
	caller calls.Caller
}

// With a credential, every call carries it (HTTP basic authentication).
func newFramework(masterURL string, cred *FrameworkCredential) *framework {
	opts := []httpcli.ConfigOpt{httpcli.Timeout(20 * time.Second)}
	if cred != nil {
		opts = append(opts, httpcli.BasicAuth(cred.Principal, cred.Secret))
	}
	cli := httpcli.New(httpcli.Endpoint(masterURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(opts...)))
	return &framework{caller: httpsched.NewCaller(cli)}
}

// call sends a call for the framework (the id is set by the caller).
func (f *framework) call(ctx context.Context, c *scheduler.Call) error {
	resp, err := f.caller.Call(ctx, c)
	if resp != nil {
		resp.Close()
	}
	return err
}

// frameworkInfo is how the scheduler registers: as Aurora does, with
// checkpointing and a long failover timeout, partition aware and taking
// revocable resources (Aurora's -receive_revocable_resources) unless
// configured otherwise, and its id once it has one.
func (s *Scheduler) frameworkInfo(id string) *mesos.FrameworkInfo {
	fi := &mesos.FrameworkInfo{
		User: s.cfg.User, Name: s.cfg.FrameworkName, Checkpoint: proto.Bool(true),
		FailoverTimeout: proto.Float64(s.cfg.FailoverTimeout.Seconds()),
		Hostname:        proto.String(s.cfg.Hostname),
		WebUiURL:        proto.String("http://" + s.cfg.advertised() + "/scheduler"),
	}
	if !s.cfg.DisablePartitionAware {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE})
	}
	if !s.cfg.DisableRevocableResources {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_REVOCABLE_RESOURCES})
	}
	if s.cfg.Role != "" {
		fi.Role = proto.String(s.cfg.Role)
	}
	if c := s.cfg.FrameworkCredential; c != nil && s.cfg.AnnouncePrincipal {
		fi.Principal = proto.String(c.Principal)
	}
	if id != "" {
		fi.ID = &mesos.FrameworkID{Value: id}
	}
	return fi
}

// runMesos keeps the framework subscribed until ctx ends, re-subscribing
// with the same framework id after any disconnection.
func (s *Scheduler) runMesos(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := s.session(ctx)
		s.setRegistered(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("disconnected from the Mesos master; re-subscribing", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session subscribes and dispatches events until the stream ends.
func (s *Scheduler) session(ctx context.Context) error {
	s.mu.Lock()
	id := s.frameworkID
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.fw.caller.Call(ctx, calls.Subscribe(s.frameworkInfo(id)).With(calls.Framework(id)))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	heartbeat := 45 * time.Second
	stream := mesosutil.DecodeEvents[scheduler.Event](resp)
	defer func() {
		cancel()
		stream.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-stream.Err:
			return err
		case <-time.After(3 * heartbeat):
			return errors.New("no heartbeat from the master")
		case ev := <-stream.Events:
			switch ev.Type {
			case scheduler.Event_SUBSCRIBED:
				if hb := ev.Subscribed.HeartbeatIntervalSeconds; hb != nil && *hb > 0 {
					heartbeat = time.Duration(*hb * float64(time.Second))
				}
				if err := s.onSubscribed(ctx, ev.Subscribed.FrameworkID.Value); err != nil {
					return err
				}
			case scheduler.Event_OFFERS:
				s.onOffers(ctx, ev.Offers.Offers)
			case scheduler.Event_RESCIND:
				s.onRescind(ev.Rescind.OfferID.Value)
			case scheduler.Event_INVERSE_OFFERS:
				s.onInverseOffers(ctx, ev.InverseOffers.InverseOffers)
			case scheduler.Event_UPDATE:
				s.onUpdate(ctx, ev.Update.Status)
			case scheduler.Event_FAILURE:
				s.onFailure(ev.Failure)
			case scheduler.Event_ERROR:
				return fmt.Errorf("master error: %s", ev.Error.Message)
			}
		}
	}
}

// send makes a call for the framework, logging failures: Mesos calls are
// fire-and-forget, and reconciliation repairs what a lost one leaves.
func (s *Scheduler) send(ctx context.Context, c *scheduler.Call) {
	s.mu.Lock()
	id := s.frameworkID
	s.mu.Unlock()
	if err := s.fw.call(ctx, c.With(calls.Framework(id))); err != nil {
		s.log.Warn("mesos call failed", "type", c.Type, "err", err)
	}
}

// onFailure logs a FAILURE event. Mesos sends one for every executor that
// ends, also when it exits normally after its task ended or was killed, so
// only an agent's loss or an executor that did not exit cleanly (a
// non-zero status, a signal, or no status at all) is a warning.
func (s *Scheduler) onFailure(f *scheduler.Event_Failure) {
	agent, exec := f.GetAgentID().GetValue(), f.GetExecutorID().GetValue()
	switch {
	case exec == "":
		s.log.Warn("agent failure", "agent", agent)
	case f.Status != nil && f.GetStatus() == 0:
		s.log.Debug("executor exited", "agent", agent, "executor", exec)
	case f.Status == nil:
		s.log.Warn("executor failure: it ended without an exit status", "agent", agent, "executor", exec)
	default:
		s.log.Warn("executor failure", "agent", agent, "executor", exec, "status", describeWaitStatus(f.GetStatus()))
	}
}

// describeWaitStatus renders a wait status (waitpid's stat_loc, as Mesos
// reports an executor's end) as "exit 1" or "signal 9".
func describeWaitStatus(st int32) string {
	ws := syscall.WaitStatus(st)
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", st)
}
