package master_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// postAs POSTs v on an internal agent path with the given Authorization
// header ("" for none) and returns the status code.
func postAs(t *testing.T, url, authorization string, v any) int {
	t.Helper()
	body, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestForgedAgentRequestsRejected: a local user without the agent secret
// can neither report a running task failed (which made the scheduler start
// a duplicate) nor use any other internal agent path; the master and the
// framework still see the task running.
func TestForgedAgentRequestsRejected(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	launchSleeper(t, s, "sleep-1")

	forged := agentproto.Update{AgentID: agent.id, FrameworkID: s.fwID, Status: mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: "sleep-1"}, State: mesos.TASK_FAILED.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		UUID: []byte("forged"), Message: proto("forged"),
	}}
	for _, auth := range []string{"", "Bearer wrong-secret-0123456789abcdef0123456789", "Basic " + string(testAgentSecret), string(testAgentSecret)} {
		for path, v := range map[string]any{
			agentproto.UpdatePath:         forged,
			agentproto.SubscribePath:      agentSubscribe(),
			agentproto.PongPath:           agentproto.Pong{AgentID: agent.id},
			agentproto.MessagePath:        agentproto.Message{AgentID: agent.id, FrameworkID: s.fwID, ExecutorID: "sleep-1", Data: []byte("x")},
			agentproto.ExecutorExitedPath: agentproto.ExecutorExited{AgentID: agent.id, FrameworkID: s.fwID, ExecutorID: "sleep-1"},
		} {
			if code := postAs(t, srv.URL+path, auth, v); code != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d, want 401", path, auth, code)
			}
		}
	}
	// The framework heard nothing of it: the next update is the answer to
	// its reconciliation, and the task still runs.
	s.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleep-1": agent.id})))
	st := s.next(scheduler.Event_UPDATE).Update.Status
	if st.TaskID.Value != "sleep-1" || st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Fatalf("after the forged updates: %s %s %s %q, want sleep-1 TASK_RUNNING by reconciliation",
			st.TaskID.Value, st.GetState(), st.GetReason(), st.GetMessage())
	}
}

// TestAgentUpdateFromAnotherAgentIgnored: an agent cannot report the
// tasks of another.
func TestAgentUpdateFromAnotherAgentIgnored(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	launchSleeper(t, s, "sleep-1")
	other := startAgent(t, srv.URL)
	other.update(s.fwID, "sleep-1", mesos.TASK_FAILED) // posted as other.id
	s.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleep-1": agent.id})))
	for {
		ev := s.next(scheduler.Event_UPDATE)
		if st := ev.Update.Status; st.TaskID.Value == "sleep-1" {
			if st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION {
				t.Fatalf("sleep-1: %s %s, want TASK_RUNNING by reconciliation", st.GetState(), st.GetReason())
			}
			return
		}
	}
}

// TestMasterWithoutSecret: a master with no agent secret refuses agents
// (403) unless told to accept any.
func TestMasterWithoutSecret(t *testing.T) {
	// A non-nil empty secret keeps startMaster from giving it the test one.
	_, closed := startMaster(t, master.Config{AgentSecret: []byte{}})
	if code := postAs(t, closed.URL+agentproto.SubscribePath, "", agentSubscribe()); code != http.StatusForbidden {
		t.Errorf("subscribe to a master without a secret: %d, want 403", code)
	}
	_, open := startMaster(t, master.Config{AgentSecret: []byte{}, InsecureAgents: true})
	if a := startAgent(t, open.URL); a.id == "" {
		t.Error("an --insecure-agents master did not register the agent")
	}
}
