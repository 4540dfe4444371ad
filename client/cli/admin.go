package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/spf13/cobra"
)

func adminCommand(env *Env) *cobra.Command {
	var bypass bool
	root := &cobra.Command{Use: "aurora_admin", Short: "Apache Aurora's administration client", Version: env.Version}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().BoolVar(&bypass, "bypass-leader-redirect", false, "send the Bypass-Leader-Redirect header")
	cl := func(cluster string) (*client.Client, error) {
		c, err := env.client(cluster)
		if err == nil {
			c.BypassLeaderRedirect = bypass
		}
		return c, err
	}
	simple := func(use, short, method string, params func(args []string) (map[string]any, error), done string) *cobra.Command {
		n := len(strings.Fields(use)) - 1
		return &cobra.Command{
			Use: use, Short: short, Args: exactArgs(n),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := cl(args[0])
				if err != nil {
					return err
				}
				p := map[string]any{}
				if params != nil {
					if p, err = params(args); err != nil {
						return err
					}
				}
				r, err := c.Call(cmd.Context(), method, p)
				if err != nil {
					return err
				}
				if done != "" {
					stdoutf(env, "%s\n", done)
				}
				for _, d := range r.Details {
					fmt.Fprintln(env.Stderr, d.Message)
				}
				return nil
			},
		}
	}
	getScheduler := &cobra.Command{
		Use: "get_scheduler CLUSTER", Short: "Print the leading scheduler", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			u, err := c.Leader(cmd.Context())
			if err != nil {
				return err
			}
			stdoutf(env, "Found leading scheduler at: %s\n", u)
			return nil
		},
	}
	quota := func(args []string) (map[string]any, error) {
		cpu, err1 := strconv.ParseFloat(args[2], 64)
		ram, err2 := parseMB(args[3])
		disk, err3 := parseMB(args[4])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, client.Errorf(client.ExitInvalidParameter, "want: cluster role cpu ram[MGT] disk[MGT]")
		}
		return map[string]any{"ownerRole": args[1], "quota": api.ResourceAggregate{NumCpus: cpu, RAMMb: ram, DiskMb: disk}}, nil
	}
	increaseQuota := &cobra.Command{
		Use: "increase_quota CLUSTER ROLE CPU RAM DISK", Short: "Add to a role's quota", Args: exactArgs(5),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			delta, err := quota(args)
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), "getQuota", map[string]any{"ownerRole": args[1]})
			if err != nil {
				return err
			}
			q := delta["quota"].(api.ResourceAggregate)
			if r.Result != nil && r.Result.GetQuotaResult != nil {
				cur := r.Result.GetQuotaResult.Quota
				q.NumCpus, q.RAMMb, q.DiskMb = q.NumCpus+cur.NumCpus, q.RAMMb+cur.RAMMb, q.DiskMb+cur.DiskMb
			}
			if _, err := c.Call(cmd.Context(), "setQuota", map[string]any{"ownerRole": args[1], "quota": q}); err != nil {
				return err
			}
			stdoutf(env, "Quota of %s is now cpu %g, ram %d MB, disk %d MB\n", args[1], q.NumCpus, q.RAMMb, q.DiskMb)
			return nil
		},
	}
	var reconcileType string
	var batch int
	reconcile := &cobra.Command{
		Use: "reconcile_tasks CLUSTER", Short: "Reconcile tasks with Mesos", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			switch reconcileType {
			case "explicit":
				_, err = c.Call(cmd.Context(), "triggerExplicitTaskReconciliation", map[string]any{"settings": map[string]any{"batchSize": batch}})
			case "implicit":
				_, err = c.Call(cmd.Context(), "triggerImplicitTaskReconciliation", map[string]any{})
			default:
				err = client.Errorf(client.ExitInvalidParameter, "--type must be implicit or explicit")
			}
			return err
		},
	}
	reconcile.Flags().StringVarP(&reconcileType, "type", "t", "explicit", "implicit or explicit")
	reconcile.Flags().IntVarP(&batch, "batch_size", "b", 1000, "tasks per explicit reconciliation batch")

	var states, role, env_ string
	var limit int
	prune := &cobra.Command{
		Use: "prune_tasks CLUSTER", Short: "Delete terminal tasks", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			q := api.TaskQuery{Role: role, Environment: env_, Limit: limit}
			if states != "" {
				q.Statuses = strings.Split(states, ",")
			}
			_, err = c.Call(cmd.Context(), "pruneTasks", map[string]any{"query": q})
			return err
		},
	}
	prune.Flags().StringVar(&states, "states", "", "comma-separated terminal states")
	prune.Flags().StringVar(&role, "role", "", "only this role")
	prune.Flags().StringVar(&env_, "env", "", "only this environment")
	prune.Flags().IntVar(&limit, "limit", 0, "at most this many tasks")

	root.AddCommand(getScheduler, query(env, cl), increaseQuota, reconcile, prune,
		simple("set_quota CLUSTER ROLE CPU RAM DISK", "Set a role's quota", "setQuota", quota, ""),
		simple("scheduler_backup_now CLUSTER", "Back the scheduler's store up", "performBackup", nil, ""),
		simple("scheduler_snapshot CLUSTER", "Snapshot the scheduler's store", "snapshot", nil, ""),
		hostCommand(env, cl, "host_status", "Show hosts' maintenance modes", "maintenanceStatus"),
		hostCommand(env, cl, "host_deactivate", "Put hosts in maintenance (SCHEDULED)", "startMaintenance"),
		hostCommand(env, cl, "host_activate", "Take hosts out of maintenance", "endMaintenance"),
		hostCommand(env, cl, "host_drain", "Drain hosts of their tasks", "drainHosts"),
		slaHostDrain(env, cl),
	)
	return root
}

var sizeRE = regexp.MustCompile(`^([0-9.]+)([MGT]?)B?$`)

// parseMB parses 512, 512M, 2G or 1T into MB.
func parseMB(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	switch m[2] {
	case "G":
		v *= 1024
	case "T":
		v *= 1024 * 1024
	}
	return int64(v), nil
}

func hostCommand(env *Env, cl func(string) (*client.Client, error), use, short, method string) *cobra.Command {
	var hosts, file string
	cmd := &cobra.Command{
		Use: use + " CLUSTER", Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := hostNames(hosts, file)
			if err != nil {
				return err
			}
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			r, err := c.Call(cmd.Context(), method, map[string]any{"hosts": api.Hosts{HostNames: names}})
			if err != nil {
				return err
			}
			// host_drain waits, as Aurora's does, until the hosts are DRAINED.
			for method == "drainHosts" && !allDrained(r, names) {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(env.Poll):
				}
				if r, err = c.Call(cmd.Context(), "maintenanceStatus", map[string]any{"hosts": api.Hosts{HostNames: names}}); err != nil {
					return err
				}
			}
			if st := append([]api.HostStatus(nil), hostStatuses(r)...); len(st) > 0 {
				sort.Slice(st, func(i, j int) bool { return st[i].Host < st[j].Host })
				for _, s := range st {
					// Aurora logs this line to stderr behind a one-word log
					// prefix; scripts take whitespace field 6 (the mode) of the
					// last line.
					fmt.Fprintf(env.Stderr, "INFO] %s is in state: %s\n", s.Host, s.Mode)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hosts, "hosts", "", "comma-separated host names")
	cmd.Flags().StringVar(&file, "filename", "", "file of host names")
	return cmd
}

// hostStatuses are the host modes of any maintenance RPC's result.
func hostStatuses(r *api.Response) []api.HostStatus {
	switch res := r.Result; {
	case res == nil:
	case res.MaintenanceStatusResult != nil:
		return res.MaintenanceStatusResult.Statuses
	case res.DrainHostsResult != nil:
		return res.DrainHostsResult.Statuses
	case res.StartMaintenanceResult != nil:
		return res.StartMaintenanceResult.Statuses
	case res.EndMaintenanceResult != nil:
		return res.EndMaintenanceResult.Statuses
	}
	return nil
}

// allDrained reports whether a maintenance result has every named host
// DRAINED.
func allDrained(r *api.Response, names []string) bool {
	mode := map[string]string{}
	for _, s := range hostStatuses(r) {
		mode[s.Host] = s.Mode
	}
	for _, n := range names {
		if mode[n] != api.ModeDrained {
			return false
		}
	}
	return true
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func query(env *Env, cl func(string) (*client.Client, error)) *cobra.Command {
	var force bool
	var format, shards, states string
	cmd := &cobra.Command{
		Use: "query CLUSTER [ROLE [JOB]]", Short: "Query tasks",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 3 {
				return client.Errorf(client.ExitInvalidCommand, "usage: query [--force] [-l FMT] [--shards N,..] [--states S,..] cluster [role [job]]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			q := api.TaskQuery{Statuses: splitList(states)}
			if len(args) > 1 {
				q.Role = args[1]
			}
			if len(args) > 2 {
				q.JobName = args[2]
			}
			if !force && (q.Role == "" || q.JobName == "") {
				return client.Errorf(client.ExitInvalidParameter, "query without a role and job needs --force")
			}
			for _, s := range q.Statuses {
				if !state.NameIn(s, state.Status.Active) && !force {
					return client.Errorf(client.ExitInvalidParameter, "query for non-active state %s needs --force", s)
				}
			}
			if shards != "" {
				ids, err := client.ParseInstances(shards)
				if err != nil {
					return err
				}
				q.InstanceIDs = ids
			}
			c, err := cl(args[0])
			if err != nil {
				return err
			}
			ts, err := tasksOf(cmd.Context(), c, q)
			if err != nil {
				return err
			}
			for _, t := range ts {
				stdoutf(env, "%s\n", formatTask(format, t))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "allow queries without a role or job, or of non-active states")
	cmd.Flags().StringVarP(&format, "listformat", "l", "%role%/%name%/%instanceId% %status%", "output format: %field% of the task")
	cmd.Flags().StringVar(&shards, "shards", "", "instance ids")
	cmd.Flags().StringVar(&states, "states", "RUNNING", "comma-separated states")
	return cmd
}

var fieldRE = regexp.MustCompile(`%(\w+)%`)

// formatTask expands %field% from the flattened task, as aurora_admin query.
func formatTask(format string, t api.ScheduledTask) string {
	at := t.AssignedTask
	fields := map[string]string{
		"role": at.Task.Job.Role, "environment": at.Task.Job.Environment, "name": at.Task.Job.Name, "jobName": at.Task.Job.Name,
		"instanceId": strconv.Itoa(at.InstanceID), "status": t.Status, "taskId": at.TaskID, "slaveHost": at.SlaveHost,
		"slaveId": at.SlaveID, "failureCount": strconv.Itoa(t.FailureCount), "ancestorId": t.AncestorID,
	}
	return fieldRE.ReplaceAllStringFunc(format, func(m string) string {
		if v, ok := fields[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}
