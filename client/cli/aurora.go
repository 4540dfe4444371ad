package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/spf13/cobra"
)

func auroraCommand(env *Env) *cobra.Command {
	root := &cobra.Command{Use: "aurora", Short: "Apache Aurora's command-line client", Version: env.Version}
	root.SetVersionTemplate("{{.Version}}\n")
	job := group("job", "Work with jobs")
	job.AddCommand(jobCreate(env), jobStatus(env), jobList(env), jobKill(env, false), jobKill(env, true), jobRestart(env), jobInspect(env), jobOpen(env), jobDiff(env), jobAdd(env))
	task := group("task", "Work with a job's tasks")
	task.AddCommand(taskSSH(env), taskRun(env), taskSCP(env))
	quota := group("quota", "Work with quotas")
	quota.AddCommand(quotaGet(env))
	config := group("config", "Work with configuration files")
	config.AddCommand(configList(env))
	root.AddCommand(job, task, quota, config)
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

// activeStatuses are Aurora's ACTIVE_STATES.
var activeStatuses = map[string]bool{"ASSIGNED": true, "DRAINING": true, "KILLING": true, "PENDING": true, "PREEMPTING": true,
	"RESTARTING": true, "RUNNING": true, "STARTING": true, "PARTITIONED": true, "THROTTLED": true}

// liveStatuses are Aurora's LIVE_STATES.
var liveStatuses = map[string]bool{"KILLING": true, "PREEMPTING": true, "RESTARTING": true, "DRAINING": true, "PARTITIONED": true, "RUNNING": true}

func tasksOf(ctx context.Context, c *client.Client, q api.TaskQuery) ([]api.ScheduledTask, error) {
	r, err := c.Call(ctx, "getTasksStatus", map[string]any{"query": q})
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
			tasks, err := tasksOf(cmd.Context(), c, api.TaskQuery{Role: w.ExactRole()})
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
						if activeStatuses[t.Status] {
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
		if activeStatuses[t.Status] {
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
		if countOf(ts, func(t api.ScheduledTask) bool { return activeStatuses[t.Status] }) == 0 {
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
	var noBatching bool
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
					if activeStatuses[t.Status] {
						instances = append(instances, t.AssignedTask.InstanceID)
					}
				}
				sort.Ints(instances)
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
	cmd.Flags().StringSlice("bind", nil, "ignored: kill needs no config")
	cmd.Flags().String("config", "", "ignored: kill needs no config")
	return cmd
}

func jobRestart(env *Env) *cobra.Command {
	var batchSize int
	var watch time.Duration
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
					if activeStatuses[t.Status] {
						instances = append(instances, t.AssignedTask.InstanceID)
					}
				}
				sort.Ints(instances)
			}
			if batchSize <= 0 {
				batchSize = 1
			}
			for start := 0; start < len(instances); start += batchSize {
				batch := instances[start:min(start+batchSize, len(instances))]
				if _, err := c.Call(ctx, "restartShards", map[string]any{"job": k.JobKey, "shardIds": batch}); err != nil {
					return err
				}
				// An instance is healthy once a new task has been RUNNING for --watch-secs.
				since := time.Now()
				for {
					ts, err := tasksOf(ctx, c, api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name, InstanceIDs: batch, Statuses: []string{"RUNNING"}})
					if err != nil {
						return err
					}
					fresh := 0
					for _, t := range ts {
						if n := len(t.TaskEvents); n > 0 && time.UnixMilli(t.TaskEvents[n-1].Timestamp).After(since) &&
							time.Since(time.UnixMilli(t.TaskEvents[n-1].Timestamp)) >= watch {
							fresh++
						}
					}
					if fresh == len(batch) {
						break
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(env.Poll):
					}
				}
			}
			stdoutf(env, "Job %s restarted successfully\n", k)
			return nil
		},
	}
	cmd.Flags().IntVar(&batchSize, "batch-size", 1, "instances restarted at a time")
	cmd.Flags().DurationVar(&watch, "watch-secs", 30*time.Second, "how long a restarted instance must stay RUNNING")
	return cmd
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
			b, _ := json.MarshalIndent(r.Result, "", "  ")
			if writeJSON {
				stdoutf(env, "%s\n", b)
				return nil
			}
			stdoutf(env, "Allocated and consumed resources of %s:\n%s\n", role, b)
			return nil
		},
	}
	cmd.Flags().BoolVar(&writeJSON, "write-json", false, "print JSON")
	return cmd
}

var _ = os.Getenv
