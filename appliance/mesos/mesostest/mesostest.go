// Package mesostest runs a Mesos master and agent in-process for tests of
// the components that use them (the executor, the scheduler), with a
// scheduler client built on mesos-go, the independent v1 client library.
// The agent launches executors from the test binary itself: the test's
// TestMain dispatches on os.Args[1] (see Cluster.Executor).
package mesostest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/taskports"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Cluster is a master, one agent and a subscribed framework.
type Cluster struct {
	T         testing.TB
	MasterURL string
	AgentURL  string
	WorkDir   string
	// AgentSecret authenticates agents to the master (random per cluster):
	// an extra agent a test starts needs it as agent.Config.MasterSecret.
	AgentSecret []byte
	// Principal and Secret are the framework credential the master holds
	// (random per cluster). Start's framework authenticates with it, as a
	// framework that runs tasks as root must; a scheduler under test uses
	// it too.
	Principal, Secret string
	Agent             *agent.Agent
	caller            calls.Caller
	events            chan *scheduler.Event
	queued            []*scheduler.Event
	FrameworkID       string
}

// Start runs a master and an agent (see StartAgent) and subscribes a
// checkpointing framework as user root, authenticated with the cluster's
// credential.
func Start(t testing.TB, opts ...func(*agent.Config)) *Cluster {
	c := StartAgent(t, opts...)
	c.subscribe()
	return c
}

// testDeclineDelay is the master's refuse filter for ACCEPT and DECLINE
// calls without filters (Mesos' 5 s by default): the tests' frameworks
// launch again on what is left of an offer (see Cluster.Launch).
const testDeclineDelay = 100 * time.Millisecond

// StartAgent runs a master and an agent (resources cpus:4;mem:4096;disk:4096
// and 101 free ports that no other cluster offers, unless opts change them), with no framework: for
// tests of a framework of their own.
func StartAgent(t testing.TB, opts ...func(*agent.Config)) *Cluster {
	t.Helper()
	secret := NewAgentSecret(t)
	principal, fwSecret := "mesostest", string(NewAgentSecret(t))
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: msrv.Listener.Addr().String(), AgentSecret: secret,
		Credentials: master.Credentials{principal: fwSecret}})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	t.Cleanup(msrv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	workDir := t.TempDir()
	// Test temp dirs are 0700; an agent's work dir is reachable (search
	// only, as the appliance makes it) by the role users tasks run as.
	for d := workDir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	res, _ := agent.ParseResources("cpus:4;mem:4096;disk:4096;" + ReservePorts(t, 101).Resource())
	cfg := agent.Config{
		ListenAddr: ln.Addr().String(), MasterURL: msrv.URL, WorkDir: workDir, Resources: res,
		Exe: self, ExecutorShutdownGrace: 10 * time.Second, MasterSecret: secret,
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { a.Run(ctx, ln); close(stopped) }()
	t.Cleanup(func() {
		a.Shutdown()
		cancel()
		<-stopped
	})
	return &Cluster{T: t, MasterURL: msrv.URL, AgentURL: "http://" + ln.Addr().String(), WorkDir: workDir, AgentSecret: secret, Agent: a,
		Principal: principal, Secret: fwSecret}
}

// NewAgentSecret returns a random agent secret, as `up` writes one.
func NewAgentSecret(t testing.TB) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b))
}

func (c *Cluster) subscribe() {
	cli := httpcli.New(httpcli.Endpoint(c.MasterURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.BasicAuth(c.Principal, c.Secret))))
	c.caller = httpsched.NewCaller(cli)
	c.events = make(chan *scheduler.Event, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	c.T.Cleanup(cancel)
	host := "localhost"
	fw := &mesos.FrameworkInfo{User: "root", Name: "mesostest", Hostname: &host, Checkpoint: proto.Bool(true)}
	resp, err := c.caller.Call(ctx, calls.Subscribe(fw))
	if err != nil {
		c.T.Fatal(err)
	}
	Pump[scheduler.Event](resp, c.events)
	c.FrameworkID = c.Next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
}

// Take returns the first queued or arriving event that match accepts,
// queueing the others; status updates are acknowledged as they arrive.
func (c *Cluster) Take(match func(*scheduler.Event) bool, what string, within time.Duration) *scheduler.Event {
	c.T.Helper()
	for i, ev := range c.queued {
		if match(ev) {
			c.queued = append(c.queued[:i], c.queued[i+1:]...)
			return ev
		}
	}
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.T.Fatalf("event stream closed waiting for %s", what)
			}
			if ev.Type == scheduler.Event_UPDATE && len(ev.Update.Status.UUID) > 0 {
				st := ev.Update.Status
				c.call(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
			}
			if match(ev) {
				return ev
			}
			c.queued = append(c.queued, ev)
		case <-timeout:
			c.T.Fatalf("no %s within %s", what, within)
		}
	}
}

// Next returns the next event of a type.
func (c *Cluster) Next(want scheduler.Event_Type) *scheduler.Event {
	c.T.Helper()
	return c.Take(func(ev *scheduler.Event) bool { return ev.Type == want }, want.String(), 20*time.Second)
}

// Update returns the next status update of a task.
func (c *Cluster) Update(task string, within time.Duration) mesos.TaskStatus {
	c.T.Helper()
	return c.Take(func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_UPDATE && ev.Update.Status.TaskID.Value == task
	}, "an update of "+task, within).Update.Status
}

func (c *Cluster) call(call *scheduler.Call) {
	c.T.Helper()
	resp, err := c.caller.Call(context.Background(), call.With(calls.Framework(c.FrameworkID)))
	if err != nil {
		c.T.Fatal(err)
	}
	if resp != nil {
		resp.Close()
	}
}

// Launch waits for an offer and launches tasks on it; make builds each
// TaskInfo from the offer (its agent id and ports).
func (c *Cluster) Launch(make ...func(mesos.Offer) mesos.TaskInfo) {
	c.T.Helper()
	// Freed resources come back in several offers (a task's, then its
	// executor's): decline those the tasks' cpus and mem do not fit in.
	for {
		offer := c.Next(scheduler.Event_OFFERS).Offers.Offers[0]
		var infos []mesos.TaskInfo
		var cpus, mem float64
		for _, f := range make {
			info := f(offer)
			infos = append(infos, info)
			cpus += scalar(info.Resources, "cpus")
			mem += scalar(info.Resources, "mem")
		}
		if cpus <= scalar(offer.Resources, "cpus") && mem <= scalar(offer.Resources, "mem") {
			c.call(calls.Accept(calls.OfferOperations{calls.OpLaunch(infos...)}.WithOffers(offer.ID)))
			return
		}
		c.call(calls.Decline(offer.ID))
	}
}

func scalar(rs []mesos.Resource, name string) float64 {
	v := 0.0
	for _, r := range rs {
		if r.Name == name && r.Scalar != nil {
			v += r.Scalar.Value
		}
	}
	return v
}

// Kill asks the master to kill a task.
func (c *Cluster) Kill(task string) {
	c.T.Helper()
	c.call(calls.Kill(task, ""))
}

// Executor returns an ExecutorInfo that runs the test binary with args (the
// test's TestMain recognizes args[0]).
func (c *Cluster) Executor(id string, args ...string) *mesos.ExecutorInfo {
	self, _ := os.Executable()
	return &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: id},
		Command:    &mesos.CommandInfo{Value: proto.String(self), Arguments: append([]string{self}, args...), Shell: proto.Bool(false)},
	}
}

// Ports lists the ports of an offer.
func Ports(o mesos.Offer) []uint64 {
	var out []uint64
	for _, r := range o.Resources {
		if r.Name == "ports" {
			for _, rg := range r.GetRanges().GetRange() {
				for p := rg.Begin; p <= rg.End; p++ {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// ReservePorts reserves n consecutive free ports, outside the ephemeral range
// and the fixed clusters' 31000-32000 and apart from every other reservation
// (other tests, appliances on --ports auto), until the test ends: what a test
// agent offers as its ports resource.
func ReservePorts(t testing.TB, n int) taskports.Range {
	t.Helper()
	r, err := taskports.Reserve(n, taskports.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release)
	return r.Range
}
