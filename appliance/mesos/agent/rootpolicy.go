package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Root policy: the agent is where the uid a task will run as is known, so
// it is where running as root is refused. A task runs in its executor,
// which runs as the executor's CommandInfo.user (for a command task, the
// task's), else the framework's user, else the agent's own user: root,
// for a root agent. The master says on each launch whether the framework
// may run anything as uid 0 (agentproto.Command.RootAllowed: it
// authenticated, or the master has --root-submissions); when it may not, a
// task whose executor would run as uid 0, or that would join an executor
// already running as uid 0, is refused with TASK_ERROR
// (REASON_TASK_UNAUTHORIZED) and nothing is started.

// executorUserName is the user an executor is to run as, by name: the
// command's user, else the framework's; empty for the agent's own.
func executorUserName(cmd *mesos.CommandInfo, fw mesos.FrameworkInfo) string {
	if name := cmd.GetUser(); name != "" {
		return name
	}
	return fw.User
}

// rootRefusal returns why the task that info's executor would run may not
// run (empty if it may): the executor would run as uid 0, or already does,
// and the framework may not run tasks as root.
func (a *Agent) rootRefusal(fs *frameworkState, info mesos.ExecutorInfo, rootAllowed bool) string {
	if rootAllowed || os.Geteuid() != 0 {
		return "" // an agent that is not root runs everything as itself
	}
	if ex := fs.executors[info.ExecutorID.Value]; ex != nil && ex.pid > 0 {
		if uid, err := processUID(ex.pid); err == nil {
			if uid == 0 {
				return fmt.Sprintf("Task refused: its executor %s runs as root (uid 0); %s", info.ExecutorID.Value, agentproto.RootRefusal)
			}
			return ""
		}
	}
	name := executorUserName(info.Command, fs.info)
	if name == "" {
		return "Task refused: it names no user, so it would run as the agent's own user, root (uid 0); " + agentproto.RootRefusal
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "" // an unknown user fails the launch itself (runUser)
	}
	if u.Uid == "0" {
		return fmt.Sprintf("Task refused: it would run as user %s, uid 0 (root); %s", name, agentproto.RootRefusal)
	}
	return ""
}

// processUID is the real uid of process pid, from /proc.
func processUID(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.Atoi(fields[0])
		}
	}
	return 0, errors.New("no Uid line in /proc/" + strconv.Itoa(pid) + "/status")
}
