package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

type jsonNumber = json.Number

// Job is a fully defaulted, interpolated job (MesosJob): the schema's Job
// (the JSON the executor reads) with the evaluated pystachio JSON it was
// decoded from.
type Job struct {
	schema.Job

	data map[string]any // the interpolated pystachio JSON
	err  error          // materialization error, reported by Select
}

// Key is cluster/role/environment/name.
func (j *Job) Key() string {
	return j.Cluster + "/" + j.Role + "/" + j.Environment + "/" + j.Name
}

// newJob materializes a Job object; errors are kept for Select.
func newJob(o *Object, overrides map[string]string) *Job {
	data, err := materialize(o, overrides)
	j := &Job{}
	if data == nil {
		// Keep the key fields, for listing and for Select's error.
		j.err = err
		j.Name = keyField(o, overrides, "name")
		j.Role = keyField(o, overrides, "role")
		j.Environment = keyField(o, overrides, "environment")
		j.Cluster = keyField(o, overrides, "cluster")
		return j
	}
	if err := j.decode(data); err != nil {
		j.err = err
		return j
	}
	j.err = err
	return j
}

func (j *Job) decode(data map[string]any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, j); err != nil {
		return fmt.Errorf("internal error decoding the job: %v", err)
	}
	j.data = data
	return nil
}

// ExecutorData is the job as the executor reads it from
// TaskConfig.executorConfig.data (§4.5): the pystachio JSON, defaults
// included, without update_config and instances, with {{thermos.*}} and
// {{mesos.*}} still to be filled in on the agent.
func (j *Job) ExecutorData() ([]byte, error) {
	if j.data == nil {
		if j.err != nil {
			return nil, j.err
		}
		return nil, fmt.Errorf("job %s has no data", j.Key())
	}
	d := make(map[string]any, len(j.data))
	for k, v := range j.data {
		if k != "update_config" && k != "instances" {
			d[k] = v
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

var portRefRe = regexp.MustCompile(`\{\{\s*thermos\.ports\[([^\]{}]+)\]\s*\}\}`)

// Ports are the named ports the scheduler must allocate: every
// {{thermos.ports[name]}} the job references, with announcer aliases
// resolved (a portmap key that maps to another name or a static number is
// not requested itself; the name it maps to is).
func (j *Job) Ports() []string {
	refs := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			for _, m := range portRefRe.FindAllStringSubmatch(v, -1) {
				refs[strings.TrimSpace(m[1])] = true
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(j.data["task"])
	walk(j.data["health_check_config"])
	out := map[string]bool{}
	if j.Announce != nil {
		resolved := resolvePortmap(j.Announce.Portmap)
		for k := range refs {
			if _, aliased := resolved[k]; !aliased {
				out[k] = true
			}
		}
		for _, v := range resolved {
			if _, err := strconv.Atoi(v); err != nil {
				out[v] = true
			}
		}
	} else {
		out = refs
	}
	var ports []string
	for p := range out {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	return ports
}

// resolvePortmap follows aliases (alias -> http -> ...) to a final name or number.
func resolvePortmap(pm map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range pm {
		seen := map[string]bool{k: true}
		for {
			next, ok := pm[v]
			if !ok || seen[v] {
				break
			}
			seen[v] = true
			v = next
		}
		out[k] = v
	}
	return out
}

// JobConfiguration is the job as createJob takes it.
func (j *Job) JobConfiguration() (api.JobConfiguration, error) {
	data, err := j.ExecutorData()
	if err != nil {
		return api.JobConfiguration{}, err
	}
	if j.Task.Resources == nil {
		return api.JobConfiguration{}, fmt.Errorf("job %s: task has no resources", j.Key())
	}
	key := api.JobKey{Role: j.Role, Environment: j.Environment, Name: j.Name}
	r := j.Task.Resources
	cpus, ramMb, diskMb := r.CPU, r.RAM/mb, r.Disk/mb
	res := []api.Resource{{NumCpus: &cpus}, {RAMMb: &ramMb}, {DiskMb: &diskMb}}
	if r.GPU > 0 {
		g := r.GPU
		res = append(res, api.Resource{NumGpus: &g})
	}
	for _, p := range j.Ports() {
		p := p
		res = append(res, api.Resource{NamedPort: &p})
	}
	tc := api.TaskConfig{
		Job:             key,
		Owner:           api.Identity{User: j.Role},
		IsService:       j.Service,
		Priority:        j.Priority,
		MaxTaskFailures: j.MaxTaskFailures,
		Production:      j.Production,
		Tier:            j.Tier,
		Resources:       res,
		Constraints:     j.constraints(),
		ContactEmail:    j.Contact,
		ExecutorConfig:  api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)},
		NumCpus:         cpus,
		RAMMb:           ramMb,
		DiskMb:          diskMb,
	}
	if j.ExecutorConfig.Name != "" && j.ExecutorConfig.Name != "AuroraExecutor" {
		tc.ExecutorConfig = api.ExecutorConfig{Name: j.ExecutorConfig.Name, Data: j.ExecutorConfig.Data}
	}
	for _, m := range j.Metadata {
		tc.Metadata = append(tc.Metadata, api.Metadata{Key: m.Key, Value: m.Value})
	}
	if p := j.PartitionPolicy; p != nil {
		tc.PartitionPolicy = &api.PartitionPolicy{Reschedule: p.Reschedule, DelaySecs: p.DelaySecs}
	}
	if p := j.SlaPolicy; p != nil {
		tc.SlaPolicy = mustJSON(thriftSla(p))
	}
	if c := j.Container; c != nil {
		tc.Container = mustJSON(thriftContainer(c))
	}
	if len(j.TaskLinks) > 0 {
		tc.TaskLinks = mustJSON(j.TaskLinks)
	}
	jc := api.JobConfiguration{
		Key:                 key,
		Owner:               api.Identity{User: j.Role},
		CronSchedule:        j.CronSchedule,
		CronCollisionPolicy: j.CronCollisionPolicy,
		TaskConfig:          tc,
		InstanceCount:       j.Instances,
	}
	if err := checkJobSize(jc); err != nil {
		return api.JobConfiguration{}, fmt.Errorf("job %s: %w", j.Key(), err)
	}
	return jc, nil
}

// checkJobSize refuses a job the scheduler would refuse for its size: its
// task config alone, serialized, is more than a task's launch may be
// (limits.TaskLaunchBytes; the launch carries it and more), or the whole
// job more than an API request may be (limits.APIRequestBytes).
func checkJobSize(jc api.JobConfiguration) error {
	tc, err := json.Marshal(jc.TaskConfig)
	if err != nil {
		return err
	}
	if len(tc) > limits.TaskLaunchBytes {
		return fmt.Errorf("the task config is %d bytes serialized, more than the %d bytes a task may take to reach its executor "+
			"(a Mesos executor reads at most %d bytes); make the executor config smaller, for example by fetching large files instead of inlining them",
			len(tc), limits.TaskLaunchBytes, limits.ExecutorEventBytes)
	}
	b, err := json.Marshal(jc)
	if err != nil {
		return err
	}
	if len(b) > limits.APIRequestBytes {
		return fmt.Errorf("the job is %d bytes serialized, more than the %d bytes the scheduler accepts in a request", len(b), limits.APIRequestBytes)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain maps of strings and numbers
	}
	return b
}

// constraints converts the constraint map: 'limit:N' is a LimitConstraint,
// anything else a comma list of values, negated by a leading '!'.
func (j *Job) constraints() []api.Constraint {
	names := make([]string, 0, len(j.Constraints))
	for k := range j.Constraints {
		names = append(names, k)
	}
	sort.Strings(names)
	out := []api.Constraint{}
	for _, n := range names {
		v := j.Constraints[n]
		if l, ok := strings.CutPrefix(v, "limit:"); ok {
			if limit, err := strconv.Atoi(strings.TrimSpace(l)); err == nil {
				out = append(out, api.Constraint{Name: n, Constraint: api.TaskConstraint{Limit: &api.LimitConstraint{Limit: limit}}})
				continue
			}
		}
		neg := strings.HasPrefix(v, "!")
		var vals []string
		for _, s := range strings.Split(strings.TrimPrefix(v, "!"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				vals = append(vals, s)
			}
		}
		out = append(out, api.Constraint{Name: n, Constraint: api.TaskConstraint{Value: &api.ValueConstraint{Negated: neg, Values: vals}}})
	}
	return out
}

func thriftSla(p *schema.SlaPolicy) map[string]any {
	switch {
	case p.Coordinator != nil:
		return map[string]any{"coordinatorSlaPolicy": map[string]any{"coordinatorUrl": p.Coordinator.CoordinatorURL, "statusKey": p.Coordinator.StatusKey}}
	case p.Percentage != nil:
		return map[string]any{"percentageSlaPolicy": map[string]any{"percentage": p.Percentage.Percentage, "durationSecs": p.Percentage.DurationSecs}}
	case p.Count != nil:
		return map[string]any{"countSlaPolicy": map[string]any{"count": p.Count.Count, "durationSecs": p.Count.DurationSecs}}
	}
	return nil
}

func thriftContainer(c *schema.Container) map[string]any {
	if d := c.Docker; d != nil {
		params := []any{}
		for _, p := range d.Parameters {
			params = append(params, map[string]any{"name": p.Name, "value": p.Value})
		}
		return map[string]any{"docker": map[string]any{"image": d.Image, "parameters": params}}
	}
	m := c.Mesos
	mc := map[string]any{}
	if img := m.Image; img != nil {
		if img.ImageID != "" {
			mc["image"] = map[string]any{"appc": map[string]any{"name": img.Name, "imageId": img.ImageID}}
		} else {
			mc["image"] = map[string]any{"docker": map[string]any{"name": img.Name, "tag": img.Tag}}
		}
	}
	vols := []any{}
	for _, v := range m.Volumes {
		vols = append(vols, map[string]any{"containerPath": v.ContainerPath, "hostPath": v.HostPath, "mode": v.Mode})
	}
	mc["volumes"] = vols
	return map[string]any{"mesos": mc}
}

// ParseJSON reads --read-json input: {"jobs": [...]} or a single job
// object in the pystachio JSON shape (§4.5). Missing fields get their
// defaults and mustaches are resolved as in a .aurora file.
func ParseJSON(data []byte, opts Options) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("json config: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("json config: want an object")
	}
	var items []any
	if js, ok := obj["jobs"]; ok && len(obj) == 1 {
		if items, ok = js.([]any); !ok {
			return nil, fmt.Errorf("json config: jobs must be a list")
		}
	} else {
		items = []any{obj}
	}
	f := &File{Path: "<json>"}
	for i, it := range items {
		sv, err := fromJSON(it)
		if err != nil {
			return nil, fmt.Errorf("json config: jobs[%d]: %v", i, err)
		}
		nv, err := normalize(sv, tJob, fmt.Sprintf("jobs[%d]", i))
		if err != nil {
			return nil, fmt.Errorf("json config: %v", err)
		}
		f.Jobs = append(f.Jobs, newJob(nv.(*Object), opts.Bindings))
	}
	return f, nil
}

// LoadJSON reads one job from --read-json input (a single job object, or
// {"jobs": [...]} holding exactly one job; use ParseJSON and Select for
// more).
func LoadJSON(data []byte) (*Job, error) {
	f, err := ParseJSON(data, Options{})
	if err != nil {
		return nil, err
	}
	if len(f.Jobs) != 1 {
		return nil, fmt.Errorf("json config holds %d jobs; select one", len(f.Jobs))
	}
	if f.Jobs[0].err != nil {
		return nil, f.Jobs[0].err
	}
	return f.Jobs[0], nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// JSON is the job's whole pystachio JSON (§4.5 of the reference), with
// update_config and instances, as `job inspect --write-json` prints it.
func (j *Job) JSON() ([]byte, error) {
	if j.data == nil {
		return nil, fmt.Errorf("job %s has no data", j.Key())
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j.data); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
