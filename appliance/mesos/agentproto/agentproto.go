// Package agentproto is the protocol between aurorabox's Mesos agent and
// its master, internal to aurorabox (a real Mesos agent speaks libprocess
// instead): the paths and messages both sides exchange, and how an agent
// authenticates (the agent secret that `up` writes). The master serves it
// (appliance/mesos/master/agentapi.go); the agent speaks it; neither
// imports the other.
package agentproto

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The agent ↔ master protocol is internal to aurorabox (a real Mesos agent
// speaks libprocess instead). An agent POSTs Subscribe to
// SubscribePath and reads a RecordIO stream of JSON AgentCommands for as
// long as it is connected; it reports task status with Update POSTs to
// UpdatePath and resends each until an ACKNOWLEDGE command arrives.
// What its executors send their framework (Message) and the end of an
// executor (ExecutorExited) go to MessagePath and
// ExecutorExitedPath, once: like Mesos, neither is delivered reliably.
// The agent answers each HEARTBEAT command (the master's ping) with an
// Pong POST to PongPath; the master drops the stream of an agent
// that stops answering (the master's MaxAgentPingTimeouts), and the agent, once
// it reads the end of its stream, re-registers.
const (
	SubscribePath      = "/internal/v1/agent/subscribe"
	UpdatePath         = "/internal/v1/agent/update"
	MessagePath        = "/internal/v1/agent/message"
	ExecutorExitedPath = "/internal/v1/agent/executor_exited"
	PongPath           = "/internal/v1/agent/pong"
)

// Pong answers the master's ping (a HEARTBEAT command).
type Pong struct {
	AgentID string `json:"agent_id"`
}

// Subscribe registers (or re-registers, with info.id set) an agent.
// A re-registering agent reports the frameworks and the live tasks it
// runs, as a Mesos agent's ReregisterSlaveMessage does, so that a master
// that restarted learns them again.
type Subscribe struct {
	Info       mesos.AgentInfo       `json:"agent_info"`
	PID        string                `json:"pid"` // slave(1)@host:port
	Frameworks []mesos.FrameworkInfo `json:"frameworks,omitempty"`
	Tasks      []Task                `json:"tasks,omitempty"`
}

// Task is a task an agent runs, as the master launched it, with its
// latest state on the agent.
type Task struct {
	FrameworkID string          `json:"framework_id"`
	Info        mesos.TaskInfo  `json:"task_info"`
	State       mesos.TaskState `json:"state"`
}

// Message carries an executor's MESSAGE call to its framework.
type Message struct {
	AgentID     string `json:"agent_id"`
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Data        []byte `json:"data"`
}

// ExecutorExited reports that a framework's executor ended. Status is
// the wait status (as waitpid's stat_loc), when the agent knows it.
type ExecutorExited struct {
	AgentID     string `json:"agent_id"`
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Status      *int32 `json:"status,omitempty"`
}

// Agent command types.
const (
	CmdRegistered        = "REGISTERED" // first command; AgentID is the assigned id
	CmdLaunch            = "LAUNCH"
	CmdKill              = "KILL"
	CmdAcknowledge       = "ACKNOWLEDGE"
	CmdShutdownFramework = "SHUTDOWN_FRAMEWORK"
	CmdShutdownExecutor  = "SHUTDOWN_EXECUTOR"
	CmdMessage           = "MESSAGE"   // a framework's message for one of its executors
	CmdHeartbeat         = "HEARTBEAT" // a ping: the agent answers with an Pong
)

// Command is one record of the agent's command stream.
type Command struct {
	Type        string               `json:"type"`
	AgentID     string               `json:"agent_id,omitempty"`
	Framework   *mesos.FrameworkInfo `json:"framework,omitempty"`
	FrameworkID string               `json:"framework_id,omitempty"`
	Tasks       []mesos.TaskInfo     `json:"tasks,omitempty"`
	TaskID      string               `json:"task_id,omitempty"`
	UUID        []byte               `json:"uuid,omitempty"`
	ExecutorID  string               `json:"executor_id,omitempty"`
	Data        []byte               `json:"data,omitempty"`
	// RootAllowed, on a LAUNCH, tells the agent that the framework may run
	// tasks and executors as uid 0: it authenticated, or the master has
	// root_submissions. Without it the agent refuses every task whose
	// user resolves to uid 0 (see frameworkauth.go).
	RootAllowed bool `json:"root_allowed,omitempty"`
}

// Update carries one task status from an agent.
type Update struct {
	AgentID     string           `json:"agent_id"`
	FrameworkID string           `json:"framework_id"`
	Status      mesos.TaskStatus `json:"status"`
}

// RootRefusal is what tasks refused for running as root are told.
const RootRefusal = "tasks run as root need an authenticated framework or --root-submissions"

// MinSecretLen is the shortest agent secret accepted, in characters
// (the appliance writes 64 hex digits: 32 random bytes).
const MinSecretLen = 32

// maxSecretFile bounds what ReadSecret reads.
const maxSecretFile = 4096

// ReadSecret reads the agent secret from path: the file's content
// without surrounding white space. The file must be a regular file that
// only its owner can read or write (0600 or stricter), since the secret is
// what tells an agent from any other local user.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("agent secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("agent secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("agent secret %s: not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("agent secret %s: mode %#o lets other users read or change it; make it 0600", path, m)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("agent secret %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("agent secret %s: longer than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < MinSecretLen {
		return nil, fmt.Errorf("agent secret %s: %d characters, want at least %d", path, len(s), MinSecretLen)
	}
	if strings.ContainsAny(s, "\r\n\t ") {
		return nil, errors.New("agent secret " + path + ": white space inside the secret")
	}
	return []byte(s), nil
}

// Authorization is the Authorization header value an agent sends.
func Authorization(secret []byte) string { return "Bearer " + string(secret) }
