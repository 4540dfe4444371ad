package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/spf13/cobra"
)

func auroraCommand(env *Env) *cobra.Command {
	var version bool
	root := &cobra.Command{Use: "aurora", Short: "Apache Aurora's command-line client", Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if version { // Aurora prints its version to stderr
				fmt.Fprintln(env.Stderr, env.Version)
				return nil
			}
			cmd.Help()
			if len(args) > 0 {
				return client.Errorf(client.ExitInvalidCommand, "unknown noun %q", args[0])
			}
			return client.Errorf(client.ExitInvalidCommand, "aurora needs a noun and a verb")
		}}
	root.Flags().BoolVar(&version, "version", false, "print the client's version")
	job := group("job", "Work with jobs")
	job.AddCommand(jobCreate(env), jobStatus(env), jobList(env), jobKill(env, false), jobKill(env, true), jobRestart(env), jobInspect(env), jobOpen(env), jobDiff(env), jobAdd(env))
	task := group("task", "Work with a job's tasks")
	task.AddCommand(taskSSH(env), taskRun(env), taskSCP(env))
	quota := group("quota", "Work with quotas")
	quota.AddCommand(quotaGet(env))
	config := group("config", "Work with configuration files")
	config.AddCommand(configList(env))
	root.AddCommand(job, task, quota, config, updateCommand(env), cronCommand(env))
	return root
}

// group is a noun: it only holds verbs, and an unknown verb is an error.
func group(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.Help()
				return client.Errorf(client.ExitInvalidCommand, "%s needs a verb", cmd.CommandPath())
			}
			return client.Errorf(client.ExitInvalidCommand, "unknown verb %q for %q", args[0], cmd.CommandPath())
		}}
}

// tasksOf returns the tasks q selects, without their executor configs
// (getTasksWithoutConfigs): no command shows them, and a job with a large
// config would otherwise weigh on every query that selects it.
func tasksOf(ctx context.Context, c *client.Client, q api.TaskQuery) ([]api.ScheduledTask, error) {
	r, err := c.Call(ctx, "getTasksWithoutConfigs", map[string]any{"query": q})
	if err != nil {
		return nil, err
	}
	if r.Result == nil || r.Result.ScheduleStatusResult == nil {
		return nil, nil
	}
	return r.Result.ScheduleStatusResult.Tasks, nil
}

func jobStatus(env *Env) *cobra.Command {
	var writeJSON bool
	cmd := &cobra.Command{
		Use:   "status CLUSTER[/ROLE[/ENV[/NAME]]]",
		Short: "Show the status of a job's tasks",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := client.ParseWildcard(args[0])
			if err != nil {
				return err
			}
			c, err := env.client(w.Cluster)
			if err != nil {
				return err
			}
			tasks, err := tasksOf(cmd.Context(), c, w.Query())
			if err != nil {
				return err
			}
			byJob := map[api.JobKey][]api.ScheduledTask{}
			for _, t := range tasks {
				if k := t.AssignedTask.Task.Job; w.Match(k) {
					byJob[k] = append(byJob[k], t)
				}
			}
			keys := make([]api.JobKey, 0, len(byJob))
			for k := range byJob {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			if writeJSON {
				type jobTasks struct {
					Job      string              `json:"job"`
					Active   []api.ScheduledTask `json:"active"`
					Inactive []api.ScheduledTask `json:"inactive"`
				}
				out := []jobTasks{}
				for _, k := range keys {
					jt := jobTasks{Job: w.Cluster + "/" + k.String(), Active: []api.ScheduledTask{}, Inactive: []api.ScheduledTask{}}
					for _, t := range byInstance(byJob[k]) {
						if state.NameIn(t.Status, state.Status.Active) {
							jt.Active = append(jt.Active, t)
						} else {
							jt.Inactive = append(jt.Inactive, t)
						}
					}
					out = append(out, jt)
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				stdoutf(env, "%s\n", b)
				return nil
			}
			if len(keys) == 0 {
				return client.Errorf(client.ExitInvalidParameter, "No matching jobs found")
			}
			for _, k := range keys {
				printJobStatus(env, w.Cluster, k, byInstance(byJob[k]))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print the tasks as JSON")
	return cmd
}

func byInstance(ts []api.ScheduledTask) []api.ScheduledTask {
	out := append([]api.ScheduledTask(nil), ts...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].AssignedTask.InstanceID < out[j].AssignedTask.InstanceID })
	return out
}

func printJobStatus(env *Env, cluster string, k api.JobKey, tasks []api.ScheduledTask) {
	var active, inactive []api.ScheduledTask
	for _, t := range tasks {
		if state.NameIn(t.Status, state.Status.Active) {
			active = append(active, t)
		} else {
			inactive = append(inactive, t)
		}
	}
	stdoutf(env, "Active tasks (%d):\n", len(active))
	for _, t := range active {
		printTask(env, t)
	}
	stdoutf(env, "Inactive tasks (%d):\n", len(inactive))
	for _, t := range inactive {
		printTask(env, t)
	}
}

func printTask(env *Env, t api.ScheduledTask) {
	k, at := t.AssignedTask.Task.Job, t.AssignedTask
	host := at.SlaveHost
	if host == "" {
		host = "None"
	}
	stdoutf(env, "\tTask role: %s, env: %s, name: %s, instance: %d, status: %s on %s\n", k.Role, k.Environment, k.Name, at.InstanceID, t.Status, host)
	cpus, ram, disk, _ := at.Task.Scalars()
	stdoutf(env, "\t  CPU: %g core(s), RAM: %d MB, Disk: %d MB\n", cpus, ram, disk)
	if len(at.AssignedPorts) > 0 {
		var ps []string
		for n, p := range at.AssignedPorts {
			ps = append(ps, fmt.Sprintf("%s: %d", n, p))
		}
		sort.Strings(ps)
		stdoutf(env, "\t  ports: %s\n", strings.Join(ps, ", "))
	}
	stdoutf(env, "\t  failure count: %d (max %d)\n", t.FailureCount, at.Task.MaxTaskFailures)
	stdoutf(env, "\t  events:\n")
	for _, e := range t.TaskEvents {
		ts := time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02 15:04:05")
		stdoutf(env, "\t   %s %s: %s\n", ts, e.Status, e.Message)
	}
}

func jobList(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list CLUSTER[/ROLE[/ENV[/NAME]]]",
		Short: "List jobs",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := client.ParseWildcard(args[0])
			if err != nil {
				return err
			}
			c, err := env.client(w.Cluster)
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), "getJobs", map[string]any{"ownerRole": w.ExactRole()})
			if err != nil {
				return err
			}
			var keys []string
			if r.Result != nil && r.Result.GetJobsResult != nil {
				for _, j := range r.Result.GetJobsResult.Configs {
					if w.Match(j.Key) {
						keys = append(keys, w.Cluster+"/"+j.Key.String())
					}
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				stdoutf(env, "%s\n", k)
			}
			return nil
		},
	}
}

// waitTerminal polls until the instances of a job have no active task.
func waitTerminal(ctx context.Context, env *Env, c *client.Client, k client.JobKey, instances []int) error {
	for {
		ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name, InstanceIDs: instances})
		if err != nil {
			return err
		}
		if countOf(ts, func(t api.ScheduledTask) bool { return state.NameIn(t.Status, state.Status.Active) }) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(env.Poll):
		}
	}
}

func countOf(ts []api.ScheduledTask, f func(api.ScheduledTask) bool) int {
	n := 0
	for _, t := range ts {
		if f(t) {
			n++
		}
	}
	return n
}

func jobKill(env *Env, all bool) *cobra.Command {
	var message string
	var batchSize int
	var noBatching, strict bool
	use, short := "kill CLUSTER/ROLE/ENV/NAME/INSTANCES", "Kill instances of a job"
	if all {
		use, short = "killall CLUSTER/ROLE/ENV/NAME", "Kill every instance of a job"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k client.JobKey
			var instances []int
			var err error
			if all {
				k, err = client.ParseJobKey(args[0])
			} else {
				k, instances, err = client.ParseInstanceSpec(args[0])
				if err == nil && instances == nil {
					err = client.Errorf(client.ExitInvalidParameter, "The instances list cannot be omitted in a kill command!; use killall to kill all instances")
				}
			}
			if err != nil {
				return err
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if all {
				ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name})
				if err != nil {
					return err
				}
				for _, t := range ts {
					if state.NameIn(t.Status, state.Status.Active) {
						instances = append(instances, t.AssignedTask.InstanceID)
					}
				}
				sort.Ints(instances)
			}
			if strict && !all {
				ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name, InstanceIDs: instances})
				if err != nil {
					return err
				}
				active := map[int]bool{}
				for _, t := range ts {
					active[t.AssignedTask.InstanceID] = active[t.AssignedTask.InstanceID] || state.NameIn(t.Status, state.Status.Active)
				}
				for _, i := range instances {
					if !active[i] {
						return client.Errorf(client.ExitInvalidParameter, "Invalid instance parameter: instance %d of %s is not active (--strict)", i, k)
					}
				}
			}
			if noBatching || batchSize <= 0 {
				batchSize = len(instances)
			}
			for start := 0; start < len(instances); start += batchSize {
				batch := instances[start:min(start+batchSize, len(instances))]
				params := map[string]any{"job": k.JobKey, "instances": batch, "message": message}
				if _, err := c.Call(ctx, "killTasks", params); err != nil {
					return err
				}
				if err := waitTerminal(ctx, env, c, k, batch); err != nil {
					return err
				}
			}
			if all {
				stdoutf(env, "Job killall succeeded\n")
			} else {
				stdoutf(env, "Job kill succeeded\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "message for the audit log")
	cmd.Flags().IntVar(&batchSize, "batch-size", 1, "instances killed at a time")
	cmd.Flags().BoolVar(&noBatching, "no-batching", false, "kill every instance at once")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail if an instance of the spec is not active")
	cmd.Flags().Int("max-total-failures", 0, "accepted for compatibility")
	cmd.Flags().StringArray("bind", nil, "ignored: kill needs no config")
	cmd.Flags().String("config", "", "ignored: kill needs no config")
	cmd.Flags().Bool("read-json", false, "ignored: kill needs no config")
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility")
	return cmd
}

func jobRestart(env *Env) *cobra.Command {
	var batchSize, watchSecs, maxPerInstance, maxTotal, pollSecs int
	cmd := &cobra.Command{
		Use: "restart CLUSTER/ROLE/ENV/NAME[/INSTANCES]", Short: "Restart instances, a batch at a time", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, instances, err := client.ParseInstanceSpec(args[0])
			if err != nil {
				return err
			}
			c, err := env.client(k.Cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if instances == nil {
				ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name})
				if err != nil {
					return err
				}
				for _, t := range ts {
					if state.NameIn(t.Status, state.Status.Active) {
						instances = append(instances, t.AssignedTask.InstanceID)
					}
				}
				sort.Ints(instances)
			}
			if len(instances) == 0 {
				return client.Errorf(client.ExitInvalidParameter, "No active instances of %s to restart", k)
			}
			r := &restarter{env: env, c: c, k: k, watch: time.Duration(watchSecs) * time.Second,
				poll: time.Duration(pollSecs) * time.Second, maxPerInstance: maxPerInstance, failures: map[int]int{}}
			if r.poll <= 0 || env.Poll < time.Second {
				r.poll = env.Poll // tests poll fast
			}
			failed := 0
			for start := 0; start < len(instances); start += max(batchSize, 1) {
				batch := instances[start:min(start+max(batchSize, 1), len(instances))]
				bad, err := r.restartBatch(ctx, batch)
				if err != nil {
					return err
				}
				if failed += len(bad); failed > maxTotal {
					return client.Errorf(client.ExitCommandFailure, "Restart of %s failed: instances %v did not stay RUNNING for %d s (more than --max-total-failures=%d)", k, bad, watchSecs, maxTotal)
				}
			}
			stdoutf(env, "Job %s restarted successfully\n", k)
			return nil
		},
	}
	cmd.Flags().IntVar(&batchSize, "batch-size", 1, "instances restarted at a time")
	cmd.Flags().IntVar(&watchSecs, "watch-secs", 30, "seconds a restarted instance must stay RUNNING to count as healthy")
	cmd.Flags().IntVar(&maxPerInstance, "max-per-instance-failures", 0, "restarts of one instance that may fail before it counts as failed")
	cmd.Flags().IntVar(&maxTotal, "max-total-failures", 0, "failed instances tolerated before the restart stops")
	cmd.Flags().IntVar(&pollSecs, "healthcheck-interval-seconds", 3, "seconds between checks of the restarted instances")
	cmd.Flags().Bool("force", false, "accepted for compatibility")
	cmd.Flags().Bool("strict", false, "accepted for compatibility")
	cmd.Flags().String("config", "", "accepted for compatibility")
	cmd.Flags().StringArray("bind", nil, "accepted for compatibility")
	cmd.Flags().Bool("read-json", false, "accepted for compatibility")
	cmd.Flags().Bool("open-browser", false, "accepted for compatibility")
	return cmd
}

// restarter is `job restart`'s client-driven batch: restart, then watch
// each instance until a new task has been RUNNING for the watch time;
// an instance whose new task ends sooner is restarted again, up to its
// failure allowance.
type restarter struct {
	env            *Env
	c              *client.Client
	k              client.JobKey
	watch, poll    time.Duration
	maxPerInstance int
	failures       map[int]int
}

// restartBatch returns the instances that failed for good.
func (r *restarter) restartBatch(ctx context.Context, batch []int) ([]int, error) {
	pending := append([]int(nil), batch...)
	var failed []int
	for len(pending) > 0 {
		// The tasks there before the restart are not the ones to judge.
		before, err := tasksOf(ctx, r.c, api.TaskQuery{Role: r.k.Role, Environment: r.k.Environment, JobName: r.k.Name, InstanceIDs: pending})
		if err != nil {
			return nil, err
		}
		old := map[string]bool{}
		for _, t := range before {
			old[t.AssignedTask.TaskID] = true
		}
		if _, err := r.c.Call(ctx, "restartShards", map[string]any{"job": r.k.JobKey, "shardIds": pending}); err != nil {
			return nil, err
		}
		var retry []int
		seen := map[string]time.Time{} // when this client first saw a task RUNNING
		for watching := pending; len(watching) > 0; {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(r.poll):
			}
			ts, err := tasksOf(ctx, r.c, api.TaskQuery{Role: r.k.Role, Environment: r.k.Environment, JobName: r.k.Name, InstanceIDs: watching})
			if err != nil {
				return nil, err
			}
			var still []int
			for _, i := range watching {
				switch healthOf(ts, i, old, seen, r.watch) {
				case instanceHealthy:
				case instanceFailed:
					if r.failures[i]++; r.failures[i] > r.maxPerInstance {
						failed = append(failed, i)
					} else {
						retry = append(retry, i)
					}
				default:
					still = append(still, i)
				}
			}
			watching = still
		}
		pending = retry
	}
	return failed, nil
}

const (
	instanceWaiting = iota
	instanceHealthy
	instanceFailed
)

// healthOf judges an instance by its new tasks (those not in old):
// healthy once one has been seen RUNNING for watch (by this client's clock,
// as Aurora's watcher does), failed if one ended first.
func healthOf(ts []api.ScheduledTask, instance int, old map[string]bool, seen map[string]time.Time, watch time.Duration) int {
	for _, t := range ts {
		if t.AssignedTask.InstanceID != instance || old[t.AssignedTask.TaskID] || len(t.TaskEvents) == 0 {
			continue
		}
		if t.Status == "RUNNING" {
			if _, ok := seen[t.AssignedTask.TaskID]; !ok {
				seen[t.AssignedTask.TaskID] = time.Now()
			}
		}
		switch {
		case t.Status == "RUNNING" && time.Since(seen[t.AssignedTask.TaskID]) >= watch:
			return instanceHealthy
		case state.NameIn(t.Status, state.Status.Terminal):
			return instanceFailed
		}
	}
	return instanceWaiting
}

func jobOpen(env *Env) *cobra.Command {
	return &cobra.Command{
		Use: "open CLUSTER[/ROLE[/ENV[/NAME]]]", Short: "Print the job's page URL", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := strings.Split(args[0], "/")
			c, err := env.client(parts[0])
			if err != nil {
				return err
			}
			base, err := c.Leader(cmd.Context())
			if err != nil {
				return err
			}
			stdoutf(env, "%s\n", strings.Join(append([]string{base + "/scheduler"}, parts[1:]...), "/"))
			return nil
		},
	}
}

func quotaGet(env *Env) *cobra.Command {
	var writeJSON bool
	cmd := &cobra.Command{
		Use: "get CLUSTER/ROLE", Short: "Show a role's quota and consumption", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, role, ok := strings.Cut(args[0], "/")
			if !ok || role == "" || strings.Contains(role, "/") {
				return client.Errorf(client.ExitInvalidParameter, "Invalid role spec %q: want CLUSTER/ROLE", args[0])
			}
			c, err := env.client(cluster)
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), "getQuota", map[string]any{"ownerRole": role})
			if err != nil {
				return err
			}
			var q api.GetQuotaResult
			if r.Result != nil && r.Result.GetQuotaResult != nil {
				q = *r.Result.GetQuotaResult
			}
			if writeJSON {
				b, _ := json.Marshal(q)
				stdoutf(env, "%s\n", b)
				return nil
			}
			// Aurora's layout: the allocation, then the shared pools that hold
			// anything.
			lines := []string{"Allocated:"}
			amounts := func(a api.ResourceAggregate) {
				a = a.Normalize()
				lines = append(lines, fmt.Sprintf("  CPU: %s", pyFloat(a.NumCpus)),
					fmt.Sprintf("  RAM: %f GB", float64(a.RAMMb)/1024), fmt.Sprintf("  Disk: %f GB", float64(a.DiskMb)/1024))
			}
			amounts(q.Quota)
			for _, pool := range []struct {
				title string
				a     api.ResourceAggregate
			}{{"Production resources consumed:", q.ProdSharedConsumption}, {"Non-production resources consumed:", q.NonProdSharedConsumption}} {
				if a := pool.a.Normalize(); a.NumCpus != 0 || a.RAMMb != 0 || a.DiskMb != 0 {
					lines = append(lines, pool.title)
					amounts(a)
				}
			}
			stdoutf(env, "%s\n", strings.Join(lines, "\n"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print JSON")
	return cmd
}

// pyFloat prints a float as Python's str() does: 2.0, 0.5, and with an
// exponent from 1e16 on and below 1e-4 (1e+308, not 309 digits).
func pyFloat(f float64) string {
	if a := math.Abs(f); a >= 1e16 || a != 0 && a < 1e-4 {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
