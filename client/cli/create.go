package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/client/config"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/spf13/cobra"
)

// configFlags are the options of every command that reads a config.
type configFlags struct {
	binds    []string
	readJSON bool
}

func (f *configFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.binds, "bind", nil, "pystachio binding var=value (repeatable)")
	cmd.Flags().BoolVar(&f.readJSON, "read-json", false, "the config file is JSON")
}

// load evaluates a config file. Every failure is Aurora's invalid
// configuration (exit 3) and names the file.
func (f *configFlags) load(path string) (*config.File, error) {
	opts := config.Options{Bindings: map[string]string{}}
	for _, b := range f.binds {
		k, v, ok := strings.Cut(b, "=")
		if !ok || k == "" {
			return nil, client.Errorf(client.ExitInvalidParameter, "--bind %q: want var=value", b)
		}
		opts.Bindings[k] = v
	}
	var file *config.File
	var err error
	if f.readJSON {
		var data []byte
		if data, err = os.ReadFile(path); err == nil {
			if file, err = config.ParseJSON(data, opts); err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
	} else {
		file, err = config.LoadFile(path, opts)
	}
	if err != nil {
		return nil, &client.Error{Code: client.ExitInvalidConfiguration, Err: err}
	}
	return file, nil
}

// job loads the one job of path that key names and checks it as the
// Aurora client does before submitting it.
func (f *configFlags) job(env *Env, k client.JobKey, path string) (*config.Job, error) {
	file, err := f.load(path)
	if err != nil {
		return nil, err
	}
	j, err := file.Select(k.Cluster, k.Role, k.Environment, k.Name)
	if err != nil {
		return nil, &client.Error{Code: client.ExitInvalidConfiguration, Err: err}
	}
	if err := j.Validate(); err != nil {
		return nil, client.Errorf(client.ExitInvalidConfiguration, "%s: job %s: %v", path, j.Key(), err)
	}
	for _, w := range j.Warnings() {
		fmt.Fprintf(env.Stderr, "Warning: %s\n", w)
	}
	return j, nil
}

// jobConfig is the Thrift JobConfiguration of j with its tier and
// production flag completed from the scheduler's tiers, as the client's
// getTierConfigs step does.
func jobConfig(ctx context.Context, c *client.Client, j *config.Job) (api.JobConfiguration, error) {
	jc, err := j.JobConfiguration()
	if err != nil {
		return jc, &client.Error{Code: client.ExitInvalidConfiguration, Err: err}
	}
	r, err := c.Call(ctx, "getTierConfigs", map[string]any{})
	if err != nil {
		return jc, err
	}
	if r.Result == nil || r.Result.GetTierConfigResult == nil {
		return jc, nil
	}
	tiers := r.Result.GetTierConfigResult
	tc := &jc.TaskConfig
	if tc.Tier != "" {
		for _, t := range tiers.Tiers {
			if t.Name == tc.Tier {
				tc.Production = t.Settings["preemptible"] != "true"
			}
		}
		return jc, nil
	}
	tc.Tier = tiers.DefaultTierName
	for _, t := range tiers.Tiers {
		if t.Settings["revocable"] != "true" && (t.Settings["preemptible"] == "true") != tc.Production {
			tc.Tier = t.Name
			break
		}
	}
	return jc, nil
}

// waitStates are --wait-until's targets and the task states that satisfy
// each: RUNNING is reached by a live or a terminal task.
var waitStates = map[string]func(string) bool{
	"PENDING": func(string) bool { return true },
	"RUNNING": func(s string) bool {
		return state.NameIn(s, state.Status.Live) || state.NameIn(s, state.Status.Terminal)
	},
	"FINISHED": func(s string) bool { return state.NameIn(s, state.Status.Terminal) },
}

// waitUntil polls until every task of the instances is in the state.
func waitUntil(ctx context.Context, env *Env, c *client.Client, k client.JobKey, instances []int, state string) error {
	reached := waitStates[state]
	for {
		ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name, InstanceIDs: instances})
		if err != nil {
			return err
		}
		if len(ts) > 0 && countOf(ts, func(t api.ScheduledTask) bool { return reached(t.Status) }) == len(ts) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(env.Poll):
		}
	}
}

func waitUntilFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "wait-until", "PENDING", "wait until the tasks are PENDING, RUNNING or FINISHED")
}

func checkWaitUntil(s string) error {
	if waitStates[s] == nil {
		return client.Errorf(client.ExitInvalidParameter, "--wait-until %q: want PENDING, RUNNING or FINISHED", s)
	}
	return nil
}

// jobURL is the job's page on the scheduler, through the cluster's proxy
// when it has one.
func jobURL(ctx context.Context, c *client.Client, k api.JobKey) (string, error) {
	base := strings.TrimRight(c.Cluster.ProxyURL, "/")
	if base == "" {
		var err error
		if base, err = c.Leader(ctx); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s/scheduler/%s/%s/%s", base, k.Role, k.Environment, k.Name), nil
}

func jobCreate(env *Env) *cobra.Command {
	var cf configFlags
	var waitFor string
	cmd := &cobra.Command{
		Use: "create CLUSTER/ROLE/ENV/NAME CONFIG", Short: "Create a job from a config", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWaitUntil(waitFor); err != nil {
				return err
			}
			k, err := client.ParseJobKey(args[0])
			if err != nil {
				return err
			}
			j, err := cf.job(env, k, args[1])
			if err != nil {
				return err
			}
			if j.CronSchedule != "" {
				return client.Errorf(client.ExitCommandFailure, "Cron jobs may only be scheduled with \"aurora cron schedule\" command")
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			jc, err := jobConfig(ctx, c, j)
			if err != nil {
				return err
			}
			if _, err := c.Call(ctx, "createJob", map[string]any{"description": jc}); err != nil {
				return err
			}
			if err := waitUntil(ctx, env, c, k, nil, waitFor); err != nil {
				return err
			}
			u, err := jobURL(ctx, c, k.JobKey)
			if err != nil {
				return err
			}
			stdoutf(env, "Job create succeeded: job url=%s\n", u)
			return nil
		},
	}
	cf.add(cmd)
	waitUntilFlag(cmd, &waitFor)
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility; prints the URL only")
	return cmd
}

func jobAdd(env *Env) *cobra.Command {
	var waitFor string
	cmd := &cobra.Command{
		Use: "add CLUSTER/ROLE/ENV/NAME/INSTANCE COUNT", Short: "Add instances copying an instance's config", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWaitUntil(waitFor); err != nil {
				return err
			}
			k, instance, err := client.ParseTaskInstance(args[0])
			if err != nil {
				return err
			}
			var count int
			if _, err := fmt.Sscan(args[1], &count); err != nil || count <= 0 {
				return client.Errorf(client.ExitInvalidParameter, "Invalid instance count %q: want a positive integer", args[1])
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			before, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name})
			if err != nil {
				return err
			}
			top := -1
			for _, t := range before {
				if state.NameIn(t.Status, state.Status.Active) {
					top = max(top, t.AssignedTask.InstanceID)
				}
			}
			if _, err := c.Call(ctx, "addInstances", map[string]any{"key": api.InstanceKey{JobKey: k.JobKey, InstanceID: instance}, "count": count}); err != nil {
				return err
			}
			var added []int
			for i := top + 1; i <= top+count; i++ {
				added = append(added, i)
			}
			return waitUntil(ctx, env, c, k, added, waitFor)
		},
	}
	waitUntilFlag(cmd, &waitFor)
	cmd.Flags().String("config", "", "accepted for compatibility")
	cmd.Flags().StringArray("bind", nil, "accepted for compatibility")
	cmd.Flags().Bool("read-json", false, "accepted for compatibility")
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility")
	return cmd
}

func jobInspect(env *Env) *cobra.Command {
	var cf configFlags
	var raw, writeJSON bool
	cmd := &cobra.Command{
		Use: "inspect CLUSTER/ROLE/ENV/NAME CONFIG", Short: "Show what a config defines, without contacting the scheduler", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := client.ParseJobKey(args[0])
			if err != nil {
				return err
			}
			j, err := cf.job(env, k, args[1])
			if err != nil {
				return err
			}
			switch {
			case writeJSON:
				b, err := j.JSON()
				if err != nil {
					return &client.Error{Code: client.ExitInvalidConfiguration, Err: err}
				}
				stdoutf(env, "%s\n", b)
			case raw:
				jc, err := j.JobConfiguration()
				if err != nil {
					return &client.Error{Code: client.ExitInvalidConfiguration, Err: err}
				}
				b, _ := json.MarshalIndent(jc, "", "  ")
				stdoutf(env, "%s\n", b)
			default:
				printInspect(env, j)
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&raw, "raw", false, "print the job's Thrift JobConfiguration")
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print the job's pystachio JSON")
	return cmd
}

// printInspect is the human-readable inspect, laid out as Aurora's.
func printInspect(env *Env, j *config.Job) {
	stdoutf(env, "Job level information\n")
	stdoutf(env, "  name:       '%s'\n", j.Name)
	stdoutf(env, "  role:       '%s'\n", j.Role)
	stdoutf(env, "  contact:    '%s'\n", j.Contact)
	stdoutf(env, "  cluster:    '%s'\n", j.Cluster)
	stdoutf(env, "  instances:  '%d'\n", j.Instances)
	if j.CronSchedule != "" {
		stdoutf(env, "  cron:\n")
		stdoutf(env, "    schedule: '%s'\n", j.CronSchedule)
		stdoutf(env, "    policy:   '%s'\n", j.CronCollisionPolicy)
	}
	if len(j.Constraints) > 0 {
		var cs []string
		for k, v := range j.Constraints {
			cs = append(cs, fmt.Sprintf("'%s': '%s'", k, v))
		}
		sort.Strings(cs)
		stdoutf(env, "  constraints:\n    %s\n", strings.Join(cs, ", "))
	}
	stdoutf(env, "  service:    %v\n", j.Service)
	stdoutf(env, "  production: %v\n", j.Production)
	stdoutf(env, "\n")
	t := j.Task
	stdoutf(env, "Task level information\n")
	stdoutf(env, "  name: '%s'\n", t.Name)
	if len(t.Constraints) > 0 {
		stdoutf(env, "  constraints:\n")
		for _, c := range t.Constraints {
			stdoutf(env, "    %s\n", strings.Join(c.Order, " < "))
		}
	}
	stdoutf(env, "\n")
	for _, p := range t.Processes {
		stdoutf(env, "Process '%s':\n", p.Name)
		if n := p.MaxFailuresOrDefault(); n != 1 {
			stdoutf(env, "  max failures: %d\n", n)
		}
		if p.Daemon {
			stdoutf(env, "  daemon\n")
		}
		if p.Ephemeral {
			stdoutf(env, "  ephemeral\n")
		}
		if p.Final {
			stdoutf(env, "  final\n")
		}
		stdoutf(env, "  cmdline:\n")
		for _, line := range strings.Split(strings.TrimSpace(p.Cmdline), "\n") {
			stdoutf(env, "    %s\n", line)
		}
		stdoutf(env, "\n")
	}
}

func configList(env *Env) *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use: "list CONFIG", Short: "List the jobs a config defines", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := cf.load(args[0])
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(file.Jobs))
			for _, j := range file.Jobs {
				keys = append(keys, j.Key())
			}
			stdoutf(env, "jobs=[%s]\n", strings.Join(keys, ", "))
			return nil
		},
	}
	cf.add(cmd)
	return cmd
}

func jobDiff(env *Env) *cobra.Command {
	var cf configFlags
	var from string
	cmd := &cobra.Command{
		Use: "diff CLUSTER/ROLE/ENV/NAME[/INSTANCES] CONFIG", Short: "Compare a config with the job the scheduler runs", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, instances, err := client.ParseInstanceSpec(args[0])
			if err != nil {
				return err
			}
			remote := k
			if from != "" {
				if remote, err = client.ParseJobKey(from); err != nil {
					return err
				}
			}
			j, err := cf.job(env, k, args[1])
			if err != nil {
				return err
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			jc, err := jobConfig(ctx, c, j)
			if err != nil {
				return err
			}
			r, err := c.Call(ctx, "populateJobConfig", map[string]any{"description": jc})
			if err != nil {
				return err
			}
			proposed := jc.TaskConfig
			if r.Result != nil && r.Result.PopulateJobResult != nil {
				proposed = r.Result.PopulateJobResult.TaskConfig
			}
			ts, err := tasksOf(ctx, c, api.TaskQuery{Role: remote.Role, Environment: remote.Environment, JobName: remote.Name, InstanceIDs: instances})
			if err != nil {
				return err
			}
			var cur, next []string
			want := map[int]bool{}
			for _, i := range instances {
				want[i] = true
			}
			for i := 0; i < jc.InstanceCount; i++ {
				if instances == nil || want[i] {
					next = append(next, taskJSON(i, proposed))
				}
			}
			for _, t := range byInstance(ts) {
				if state.NameIn(t.Status, state.Status.Active) {
					cur = append(cur, taskJSON(t.AssignedTask.InstanceID, t.AssignedTask.Task))
				}
			}
			return showDiff(ctx, env, strings.Join(cur, ""), strings.Join(next, ""))
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "compare with this job rather than the key's")
	return cmd
}

// taskJSON is one instance's task config as the diff shows it, with the
// executor data expanded so that a changed process is one changed line.
func taskJSON(instance int, tc api.TaskConfig) string {
	v := map[string]any{}
	b, _ := json.Marshal(tc)
	json.Unmarshal(b, &v)
	if ec, ok := v["executorConfig"].(map[string]any); ok {
		var data any
		if s, ok := ec["data"].(string); ok && json.Unmarshal([]byte(s), &data) == nil {
			ec["data"] = data
		}
	}
	out, _ := json.MarshalIndent(map[string]any{"instance": instance, "task": v}, "", "  ")
	return string(out) + "\n"
}

// showDiff runs $DIFF_VIEWER (default diff) on the running and the
// proposed configs, as Aurora does. Differences are not an error.
func showDiff(ctx context.Context, env *Env, cur, next string) error {
	dir, err := os.MkdirTemp("", "aurora-diff")
	if err != nil {
		return client.Errorf(client.ExitCommandFailure, "diff: %v", err)
	}
	defer os.RemoveAll(dir)
	a, b := filepath.Join(dir, "running"), filepath.Join(dir, "proposed")
	os.WriteFile(a, []byte(cur), 0o600)
	os.WriteFile(b, []byte(next), 0o600)
	viewer := strings.Fields(os.Getenv("DIFF_VIEWER"))
	if len(viewer) == 0 {
		viewer = []string{"diff", "-u"}
	}
	c := exec.CommandContext(ctx, viewer[0], append(viewer[1:], a, b)...)
	c.Stdout, c.Stderr = env.Stdout, env.Stderr
	err = c.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return nil // diff's "files differ"
	}
	if err != nil {
		return client.Errorf(client.ExitCommandFailure, "diff viewer %s: %v", viewer[0], err)
	}
	return nil
}
