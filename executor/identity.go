package executor

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

// keyPart is what a job key's role, environment and name may be (Aurora's
// GOOD_IDENTIFIER_PATTERN); "." and ".." are refused on top, since each part
// becomes a component of the task's ServerSet path.
var keyPart = regexp.MustCompile(`^[\w\-.]+$`)

// checkIdentity checks that the executor config (the free-form Thermos job
// in executorConfig.data, which the client writes) names the same job as
// the task's job key (AssignedTask.task.job, which the scheduler sets).
// Only the job key decides who the task runs as and where it announces, as
// in Aurora's executor; a config that claims another identity is invalid.
func (e *thermos) checkIdentity(at *api.AssignedTask, job *schema.Job) error {
	key := at.Task.Job
	for _, part := range []struct{ what, v string }{{"role", key.Role}, {"environment", key.Environment}, {"name", key.Name}} {
		if !keyPart.MatchString(part.v) || part.v == "." || part.v == ".." {
			return fmt.Errorf("the task's job key %q has an invalid %s %q", key.String(), part.what, part.v)
		}
	}
	for _, f := range []struct{ what, got, want string }{
		{"role", job.Role, key.Role},
		{"environment", job.Environment, key.Environment},
		{"name", job.Name, key.Name},
		{"task user", job.Task.User, key.Role},
	} {
		if f.got != "" && f.got != f.want {
			return fmt.Errorf("the executor config's %s %q does not match the task's job key %s", f.what, f.got, key.String())
		}
	}
	if job.Announce != nil && job.Announce.ZKPath != "" && !e.cfg.AnnouncerAllowCustomServersetPath {
		return fmt.Errorf("the announcer's zk_path %q needs an executor started with --announcer-allow-custom-serverset-path", job.Announce.ZKPath)
	}
	return nil
}

// taskUser is the user the task's processes run as: its role's user when
// the executor runs as root, else (or with Config.NoSetuid) the executor's
// own user. A role whose user does not exist, or cannot reach the sandbox,
// is an error: the task never runs as root in its place. The role user
// gets the run directory (sandboxRoot), as Aurora's DirectorySandbox does.
func (e *thermos) taskUser(role, sandboxRoot string) (*user.User, error) {
	if e.cfg.NoSetuid || os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(role)
	if err != nil {
		if errors.As(err, new(user.UnknownUserError)) {
			return nil, fmt.Errorf("user %s does not exist", role)
		}
		return nil, fmt.Errorf("looking up user %s: %w", role, err)
	}
	if blocked := unreachable(filepath.Dir(sandboxRoot), u); blocked != "" {
		return nil, fmt.Errorf("user %s cannot reach the sandbox %s: no search permission on %s", role, sandboxRoot, blocked)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", role, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", role, u.Gid, err)
	}
	if err := os.Chown(sandboxRoot, uid, gid); err != nil {
		return nil, fmt.Errorf("could not give the sandbox to %s: %w", role, err)
	}
	return u, nil
}
