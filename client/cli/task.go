package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/spf13/cobra"
)

// sandboxPattern is where a task's sandbox is on its agent (Aurora's
// command_runner): the globs are the agent and framework ids.
func sandboxPattern(cl client.Cluster, taskID string, executorSandbox bool) string {
	runDir := cl.SlaveRunDirectory
	if runDir == "" {
		runDir = "latest"
	}
	p := filepath.Join(cl.SlaveRoot, "slaves", "*", "frameworks", "*", "executors", "thermos-"+taskID, "runs", runDir)
	if !executorSandbox {
		p = filepath.Join(p, "sandbox")
	}
	return p
}

// isLocal reports whether host names this machine, so that a task there
// is reached without ssh (the single-machine appliance).
func isLocal(host string) bool {
	if h, err := os.Hostname(); err == nil && strings.EqualFold(h, host) {
		return true
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		if ip.IsLoopback() {
			return true
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// substitute fills a command's {{thermos.ports[x]}}, {{thermos.task_id}}
// and {{mesos.instance}} from the task, as `task run` does.
func substitute(cmd string, t api.ScheduledTask) string {
	at := t.AssignedTask
	cmd = strings.ReplaceAll(cmd, "{{thermos.task_id}}", at.TaskID)
	cmd = strings.ReplaceAll(cmd, "{{mesos.instance}}", strconv.Itoa(at.InstanceID))
	for n, p := range at.AssignedPorts {
		cmd = strings.ReplaceAll(cmd, "{{thermos.ports["+n+"]}}", strconv.Itoa(p))
	}
	return cmd
}

// runIn runs command in a task's sandbox: locally as the role user when
// the task is on this machine, else over ssh as Aurora does. out gets the
// combined output unless errOut is set.
func runIn(ctx context.Context, cl client.Cluster, t api.ScheduledTask, command, sshUser string, sshOptions []string, executorSandbox, tty bool, stdin io.Reader, out, errOut io.Writer) error {
	if errOut == nil {
		errOut = out
	}
	at := t.AssignedTask
	role := at.Task.Job.Role
	pattern := sandboxPattern(cl, at.TaskID, executorSandbox)
	if isLocal(at.SlaveHost) {
		dirs, _ := filepath.Glob(pattern)
		if len(dirs) == 0 {
			return client.Errorf(client.ExitCommandFailure, "no sandbox of task %s at %s", at.TaskID, pattern)
		}
		c := exec.CommandContext(ctx, "/bin/bash", "-c", command)
		c.Dir = dirs[0]
		c.Stdin, c.Stdout, c.Stderr = stdin, out, errOut
		c.Env = append(os.Environ(), "HOME="+dirs[0])
		if u, err := user.Lookup(role); err == nil && os.Geteuid() == 0 && ownedBy(dirs[0], u) {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		return c.Run()
	}
	if sshUser == "" {
		sshUser = role
	}
	args := append([]string{}, sshOptions...)
	if tty {
		args = append(args, "-t")
	} else {
		args = append(args, "-n", "-q")
	}
	args = append(args, sshUser+"@"+at.SlaveHost, "cd "+pattern+";"+command)
	c := exec.CommandContext(ctx, "ssh", args...)
	c.Stdin, c.Stdout, c.Stderr = stdin, out, errOut
	return c.Run()
}

// ownedBy reports whether dir belongs to u: the sandbox of a task that ran
// as its role.
func ownedBy(dir string, u *user.User) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	return strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)) == u.Uid
}

func liveTasks(ctx context.Context, c *client.Client, k client.JobKey, instances []int) ([]api.ScheduledTask, error) {
	ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name, InstanceIDs: instances})
	if err != nil {
		return nil, err
	}
	var out []api.ScheduledTask
	for _, t := range byInstance(ts) {
		if state.NameIn(t.Status, state.Status.Live) {
			out = append(out, t)
		}
	}
	return out, nil
}

func taskSSH(env *Env) *cobra.Command {
	var command, sshUser string
	var sshOptions, tunnels []string
	var executorSandbox bool
	cmd := &cobra.Command{
		Use: "ssh CLUSTER/ROLE/ENV/NAME[/INSTANCE]", Short: "Run a shell or a command in a task's sandbox", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k client.JobKey
			var instances []int
			var err error
			if strings.Count(args[0], "/") == 3 {
				// No instance: any live one, as Aurora picks one at random.
				if command != "" {
					return client.Errorf(client.ExitInvalidParameter, "an instance is required with --command: %s/INSTANCE", args[0])
				}
				k, err = client.ParseJobKey(args[0])
			} else {
				var i int
				k, i, err = client.ParseTaskInstance(args[0])
				instances = []int{i}
			}
			if err != nil {
				return err
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ts, err := liveTasks(cmd.Context(), c, k, instances)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				return client.Errorf(client.ExitInvalidParameter, "Task %s is not running", args[0])
			}
			t := ts[rand.IntN(len(ts))]
			opts := append([]string{}, sshOptions...)
			for _, tun := range tunnels {
				local, name, ok := strings.Cut(tun, ":")
				port, known := t.AssignedTask.AssignedPorts[name]
				if !ok || !known {
					return client.Errorf(client.ExitInvalidParameter, "--tunnels %q: want PORT:NAME with NAME one of the task's ports", tun)
				}
				opts = append(opts, "-L", fmt.Sprintf("%s:%s:%d", local, t.AssignedTask.SlaveHost, port))
			}
			if command == "" {
				command = "bash"
			}
			err = runIn(cmd.Context(), c.Cluster, t, substitute(command, t), sshUser, opts, executorSandbox, true, os.Stdin, env.Stdout, nil)
			if ee, ok := err.(*exec.ExitError); ok {
				return client.Errorf(ee.ExitCode(), "command exited with status %d", ee.ExitCode())
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&command, "command", "c", "", "command to run instead of a shell")
	cmd.Flags().StringVarP(&sshUser, "ssh-user", "l", "", "ssh as this user instead of the role")
	cmd.Flags().StringSliceVar(&sshOptions, "ssh-options", nil, "extra ssh options")
	cmd.Flags().StringArrayVarP(&tunnels, "tunnels", "L", nil, "PORT:NAME forwards local PORT to the task's port NAME (over ssh)")
	cmd.Flags().BoolVar(&executorSandbox, "executor-sandbox", false, "the executor's sandbox rather than the task's")
	cmd.Flags().StringP("pid-file", "p", "", "accepted for compatibility")
	return cmd
}

func taskRun(env *Env) *cobra.Command {
	var sshUser string
	var sshOptions []string
	var executorSandbox bool
	cmd := &cobra.Command{
		Use: "run CLUSTER/ROLE/ENV/NAME[/INSTANCES] COMMAND", Short: "Run a command in every live task's sandbox", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, instances, err := client.ParseInstanceSpec(args[0])
			if err != nil {
				return err
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ts, err := liveTasks(cmd.Context(), c, k, instances)
			if err != nil {
				return err
			}
			for _, t := range ts {
				pr, pw := io.Pipe()
				done := make(chan struct{})
				go func() {
					defer close(done)
					sc := bufio.NewScanner(pr)
					for sc.Scan() {
						fmt.Fprintf(env.Stdout, "%s:  %s\n", t.AssignedTask.SlaveHost, sc.Text())
					}
				}()
				err := runIn(cmd.Context(), c.Cluster, t, substitute(args[1], t), sshUser, sshOptions, executorSandbox, false, nil, pw, nil)
				pw.Close()
				<-done
				if _, ok := err.(*exec.ExitError); err != nil && !ok {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&sshUser, "ssh-user", "l", "", "ssh as this user instead of the role")
	cmd.Flags().StringSliceVar(&sshOptions, "ssh-options", nil, "extra ssh options")
	cmd.Flags().BoolVar(&executorSandbox, "executor-sandbox", false, "the executor's sandbox rather than the task's")
	cmd.Flags().IntP("threads", "t", 1, "accepted for compatibility; tasks run one after another")
	return cmd
}

// scpPath is one `task scp` operand: a local path, or a path in the
// sandbox of a task instance.
type scpPath struct {
	remote bool
	key    client.JobKey
	inst   int
	path   string
}

func parseSCPPath(s string) (scpPath, error) {
	if spec, p, ok := strings.Cut(s, ":"); ok && strings.Count(spec, "/") == 4 {
		k, inst, err := client.ParseTaskInstance(spec)
		if err != nil {
			return scpPath{}, err
		}
		if strings.HasPrefix(p, "~") {
			return scpPath{}, client.Errorf(client.ExitInvalidParameter, "%s: paths in a sandbox cannot start with ~", s)
		}
		return scpPath{remote: true, key: k, inst: inst, path: p}, nil
	}
	return scpPath{path: s}, nil
}

// taskSCP copies files to and from task sandboxes. On this machine it
// reads or writes the sandbox as the role user (so a 0700 sandbox stays
// closed to others); elsewhere it runs scp as the role, as Aurora does.
func taskSCP(env *Env) *cobra.Command {
	var scpOptions []string
	var executorSandbox bool
	cmd := &cobra.Command{
		Use: "scp [CLUSTER/ROLE/ENV/NAME/INSTANCE:]SOURCE... [CLUSTER/ROLE/ENV/NAME/INSTANCE:]DEST", Short: "Copy files to or from task sandboxes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return client.Errorf(client.ExitInvalidCommand, "%s needs a source and a destination", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var ps []scpPath
			for _, a := range args {
				p, err := parseSCPPath(a)
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
			dst, srcs := ps[len(ps)-1], ps[:len(ps)-1]
			for _, src := range srcs {
				if src.remote == dst.remote {
					return client.Errorf(client.ExitInvalidParameter, "task scp copies between a task sandbox and this machine: one side must be local")
				}
				r := src
				if dst.remote {
					r = dst
				}
				c, err := env.client(r.key.Cluster)
				if err != nil {
					return err
				}
				ts, err := liveTasks(ctx, c, r.key, []int{r.inst})
				if err != nil {
					return err
				}
				if len(ts) == 0 {
					return client.Errorf(client.ExitInvalidParameter, "Task %s/%d is not running", r.key, r.inst)
				}
				t := ts[0]
				if !isLocal(t.AssignedTask.SlaveHost) {
					pattern := sandboxPattern(c.Cluster, t.AssignedTask.TaskID, executorSandbox)
					remote := t.AssignedTask.Task.Job.Role + "@" + t.AssignedTask.SlaveHost + ":" + sandboxJoin(pattern, r.path)
					a, b := src.path, remote
					if src.remote {
						a, b = remote, dst.path
					}
					sc := exec.CommandContext(ctx, "scp", append(append([]string{}, scpOptions...), a, b)...)
					sc.Stdout, sc.Stderr = env.Stdout, env.Stderr
					if err := sc.Run(); err != nil {
						return client.Errorf(client.ExitCommandFailure, "scp: %v", err)
					}
					continue
				}
				if err := localCopy(ctx, c.Cluster, t, src, dst, executorSandbox, env); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&scpOptions, "scp-options", nil, "extra scp options")
	cmd.Flags().BoolVar(&executorSandbox, "executor-sandbox", false, "the executor's sandbox rather than the task's")
	return cmd
}

// sandboxJoin joins a path to the sandbox; an absolute path stays as is,
// as with scp.
func sandboxJoin(sandbox, p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return sandbox + "/" + p
}

// localCopy copies one file between this machine and a local task's
// sandbox. The sandbox side runs as the role (through runIn), so the
// sandbox's permissions decide, never this command's.
func localCopy(ctx context.Context, cl client.Cluster, t api.ScheduledTask, src, dst scpPath, executorSandbox bool, env *Env) error {
	if src.remote {
		f, err := os.OpenFile(localDest(dst.path, src.path), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return client.Errorf(client.ExitCommandFailure, "scp: %v", err)
		}
		defer f.Close()
		var errb strings.Builder
		err = runIn(ctx, cl, t, "exec cat -- "+shellQuote(src.path), "", nil, executorSandbox, false, nil, f, &errb)
		if err != nil {
			return client.Errorf(client.ExitCommandFailure, "scp: %s: %s", src.path, strings.TrimSpace(errb.String()))
		}
		return nil
	}
	in, err := os.Open(src.path)
	if err != nil {
		return client.Errorf(client.ExitCommandFailure, "scp: %v", err)
	}
	defer in.Close()
	target := dst.path
	if target == "" || strings.HasSuffix(target, "/") {
		target += filepath.Base(src.path)
	}
	var out strings.Builder
	if err := runIn(ctx, cl, t, "exec cat > "+shellQuote(target), "", nil, executorSandbox, false, in, &out, nil); err != nil {
		return client.Errorf(client.ExitCommandFailure, "scp: %s: %s", target, strings.TrimSpace(out.String()))
	}
	return nil
}

// localDest is where a copied file lands: into dest if it is a directory.
func localDest(dest, src string) string {
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return filepath.Join(dest, filepath.Base(src))
	}
	return dest
}

// shellQuote quotes s for bash, so that no file name is ever run as code.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
