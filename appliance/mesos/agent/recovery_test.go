package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func killTask(t *testing.T, s *sched, id string) {
	t.Helper()
	resp, err := s.caller.Call(context.Background(), calls.Kill(id, "").With(calls.Framework(s.fwID)))
	if err != nil {
		t.Fatal(err)
	}
	closeResp(resp)
}

// agentProcess runs an agent in this (re-executed) test binary, so that a
// test can kill it with SIGKILL.
func agentProcess() {
	res, _ := agent.ParseResources("cpus:2;mem:1024;disk:1024;" + os.Getenv("AGENT_PORTS"))
	self, _ := os.Executable()
	a, err := agent.New(agent.Config{
		ListenAddr: os.Getenv("AGENT_LISTEN"), MasterURL: os.Getenv("AGENT_MASTER"), WorkDir: os.Getenv("AGENT_WORKDIR"),
		Resources: res, Exe: self, ExecutorShutdownGrace: time.Second, RecoveryTimeout: 20 * time.Second, MasterSecret: testAgentSecret,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", os.Getenv("AGENT_LISTEN"))
	if err != nil {
		panic(err)
	}
	a.Run(context.Background(), ln)
}

func startAgentProcess(t *testing.T, listen, masterURL, workDir string) *exec.Cmd {
	t.Helper()
	self, _ := os.Executable()
	// The restarted agent offers the ports the first one reserved.
	portsFile := filepath.Join(workDir, "test-ports")
	ports, err := os.ReadFile(portsFile)
	if err != nil {
		ports = []byte(mesostest.ReservePorts(t, 11).Resource())
		if err := os.WriteFile(portsFile, ports, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(self, "agent-process")
	cmd.Env = append(os.Environ(), "AGENT_LISTEN="+listen, "AGENT_MASTER="+masterURL, "AGENT_WORKDIR="+workDir, "AGENT_PORTS="+string(ports))
	logf, _ := os.OpenFile(filepath.Join(workDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	return cmd
}

// TestAgentKill9Recovery kills the agent with SIGKILL while three command
// tasks run: one keeps running, one finishes while the agent is down, and
// one loses its executor while the agent is down. The restarted agent
// adopts the live executor (a KILL still reaches the task), delivers the
// update the finished task's executor could not send, and reports the task
// whose executor died as failed.
func TestAgentKill9Recovery(t *testing.T) {
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: msrv.Listener.Addr().String(), AgentSecret: testAgentSecret, RootSubmissions: true})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	t.Cleanup(msrv.Close) // last: after the agent process and the subscription are gone
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	listen := ln.Addr().String()
	ln.Close()
	workDir := t.TempDir()
	// Executors outlive a killed agent by design; do not leak them past the test.
	t.Cleanup(func() {
		for _, pid := range processesWithEnv(func(kv string) bool { return strings.HasPrefix(kv, "MESOS_DIRECTORY="+workDir+"/") }) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if iso, err := isolation.New(isolation.AgentRoot(workDir, ""), nil); err == nil {
			iso.Cleanup()
		}
	})
	ag := startAgentProcess(t, listen, msrv.URL, workDir)
	// Only a checkpointing framework's executors outlive their agent.
	s := subscribe(t, msrv.URL, func(fw *mesos.FrameworkInfo) { fw.Checkpoint = proto.Bool(true) })

	s.launch(shellTask("stays", "sleep 300"), shellTask("finishes", "sleep 3"), shellTask("orphaned", "sleep 300"))
	for _, id := range []string{"stays", "finishes", "orphaned"} {
		for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
			if st := s.updateFor(id); st.GetState() != want {
				t.Fatalf("%s: %s, want %s", id, st.GetState(), want)
			}
		}
	}
	ag.Process.Signal(syscall.SIGKILL)
	ag.Wait()
	// While the agent is down: one executor dies, one task finishes.
	pids := executorPIDs("orphaned")
	if len(pids) != 1 {
		t.Fatalf("executor pids of orphaned: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	time.Sleep(4 * time.Second)

	startAgentProcess(t, listen, msrv.URL, workDir)
	// Updates are delivered at least once: an update whose acknowledgement
	// was still on its way to the agent when it was killed comes again
	// (RUNNING of a task before its FINISHED), so wait for each task's
	// terminal update.
	got := map[string]mesos.TaskStatus{}
	ended := func(id string) bool { st := got[id]; return mesosutil.IsTerminal(st.GetState()) }
	for !ended("finishes") || !ended("orphaned") {
		st := s.next(scheduler.Event_UPDATE).Update.Status
		got[st.TaskID.Value] = st
	}
	if st := got["finishes"]; st.GetState() != mesos.TASK_FINISHED {
		t.Errorf("task that finished while the agent was down: %s (%s)", st.GetState(), st.GetMessage())
	}
	if st := got["orphaned"]; st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED {
		t.Errorf("task whose executor died while the agent was down: %s %s %q", st.GetState(), st.GetReason(), st.GetMessage())
	}
	if pids := executorPIDs("stays"); len(pids) != 1 {
		for _, p := range pids {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			t.Logf("pid %d cmdline %q status %s", p, cl, strings.Join(strings.Split(string(st), "\n")[:8], " | "))
		}
		t.Fatalf("the running task's executor did not survive the agent's restart: pids %v", pids)
	}
	// The adopted executor re-subscribed: a kill reaches it.
	killTask(t, s, "stays")
	if st := s.updateFor("stays"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill after recovery: %s %q", st.GetState(), st.GetMessage())
	}
}
