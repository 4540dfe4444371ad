package config

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Units (bytes).
const (
	kb = 1024
	mb = 1024 * kb
	gb = 1024 * mb
	tb = 1024 * gb
)

// The schema of thermos/config/schema_base.py and aurora/config/schema/base.py.
var (
	tRotatePolicy = newStruct("RotatePolicy", nil,
		def("log_size", tInteger, 100*mb), def("backups", tInteger, 5))
	tLogger = newStruct("Logger", nil,
		def("destination", enumOf("LoggerDestination", "file", "console", "both", "none"), "file"),
		def("mode", enumOf("LoggerMode", "standard", "rotate"), "standard"),
		opt("rotate", tRotatePolicy))
	tResources = newStruct("Resources", nil,
		req("cpu", tFloat), req("ram", tInteger), req("disk", tInteger), def("gpu", tInteger, 0))
	tProcess = newStruct("Process", nil,
		req("cmdline", tString), req("name", tString), opt("resources", tResources),
		def("max_failures", tInteger, 1), def("daemon", tBoolean, false),
		def("ephemeral", tBoolean, false), def("min_duration", tInteger, 5),
		def("final", tBoolean, false), opt("logger", tLogger))
	tConstraint = newStruct("Constraint", nil, opt("order", listOf(tString)))
	tTask       = newStruct("Task", nil,
		def("name", tString, "{{processes[0].name}}"),
		opt("processes", listOf(tProcess)),
		def("constraints", listOf(tConstraint), starlark.NewList(nil)),
		opt("resources", tResources),
		def("max_failures", tInteger, 1), def("max_concurrency", tInteger, 0),
		def("finalization_wait", tInteger, 30), opt("user", tString))

	tQueueUpdateStrategy = newStruct("QueueUpdateStrategy", nil, def("batch_size", tInteger, 1))
	tBatchUpdateStrategy = newStruct("BatchUpdateStrategy", nil,
		def("batch_size", tInteger, 1), def("autopause_after_batch", tBoolean, false))
	tVariableBatchUpdateStrategy = newStruct("VariableBatchUpdateStrategy", nil,
		req("batch_sizes", listOf(tInteger)), def("autopause_after_batch", tBoolean, false))
	tUpdateConfig = newStruct("UpdateConfig", nil,
		def("batch_size", tInteger, 1), def("watch_secs", tInteger, 45),
		def("max_per_shard_failures", tInteger, 0), def("max_total_failures", tInteger, 0),
		def("rollback_on_failure", tBoolean, true), def("wait_for_batch_completion", tBoolean, false),
		opt("pulse_interval_secs", tInteger), def("sla_aware", tBoolean, false),
		opt("update_strategy", choice(tQueueUpdateStrategy, tBatchUpdateStrategy, tVariableBatchUpdateStrategy)))

	tHTTPHealthChecker = newStruct("HttpHealthChecker", nil,
		def("endpoint", tString, "/health"), def("expected_response", tString, "ok"),
		def("expected_response_code", tInteger, 0))
	tShellHealthChecker  = newStruct("ShellHealthChecker", nil, req("shell_command", tString))
	tHealthCheckerConfig = newStruct("HealthCheckerConfig", nil,
		opt("http", tHTTPHealthChecker), opt("shell", tShellHealthChecker))
	tHealthCheckConfig = newStruct("HealthCheckConfig", nil,
		def("health_checker", tHealthCheckerConfig, mkObject(tHealthCheckerConfig, "http", mkObject(tHTTPHealthChecker))),
		def("initial_interval_secs", tFloat, 15.0), def("interval_secs", tFloat, 10.0),
		def("max_consecutive_failures", tInteger, 0), def("min_consecutive_successes", tInteger, 1),
		def("timeout_secs", tFloat, 1.0))

	tHTTPLifecycleConfig = newStruct("HttpLifecycleConfig", nil,
		def("port", tString, "health"), def("graceful_shutdown_endpoint", tString, "/quitquitquit"),
		def("shutdown_endpoint", tString, "/abortabortabort"),
		def("graceful_shutdown_wait_secs", tInteger, 5), def("shutdown_wait_secs", tInteger, 5))
	tLifecycleConfig = newStruct("LifecycleConfig", nil, opt("http", tHTTPLifecycleConfig))

	tAnnouncer = newStruct("Announcer", nil,
		def("primary_port", tString, "http"),
		def("portmap", mapOf(tString, tString), dictOf("aurora", "{{primary_port}}")),
		opt("zk_path", tString))

	tParameter   = newStruct("Parameter", nil, req("name", tString), req("value", tString))
	tDocker      = newStruct("Docker", nil, req("image", tString), def("parameters", listOf(tParameter), starlark.NewList(nil)))
	tContainer   = newStruct("Container", nil, opt("docker", tDocker))
	tAppcImage   = newStruct("AppcImage", nil, req("name", tString), req("image_id", tString))
	tDockerImage = newStruct("DockerImage", nil, req("name", tString), req("tag", tString))
	tMode        = enumOf("Mode", "RO", "RW")
	tVolume      = newStruct("Volume", nil, req("container_path", tString), req("host_path", tString), req("mode", tMode))
	tMesos       = newStruct("Mesos", nil, opt("image", choice(tAppcImage, tDockerImage)),
		def("volumes", listOf(tVolume), starlark.NewList(nil)))

	tPartitionPolicy = newStruct("PartitionPolicy", nil,
		def("reschedule", tBoolean, true), def("delay_secs", tInteger, 0))
	tMetadata       = newStruct("Metadata", nil, req("key", tString), req("value", tString))
	tExecutorConfig = newStruct("ExecutorConfig", nil,
		def("name", tString, "AuroraExecutor"), def("data", tString, ""))
	tCountSlaPolicy       = newStruct("CountSlaPolicy", nil, req("count", tInteger), req("duration_secs", tInteger))
	tPercentageSlaPolicy  = newStruct("PercentageSlaPolicy", nil, req("percentage", tFloat), req("duration_secs", tInteger))
	tCoordinatorSlaPolicy = newStruct("CoordinatorSlaPolicy", nil,
		req("coordinator_url", tString), def("status_key", tString, "drain"))

	tJob = newStruct("Job", nil,
		def("name", tString, "{{task.name}}"),
		req("role", tString), opt("contact", tString), req("cluster", tString),
		req("environment", tString), def("instances", tInteger, 1), req("task", tTask),
		opt("announce", tAnnouncer), opt("tier", tString), opt("cron_schedule", tString),
		def("cron_collision_policy", enumOf("CronCollisionPolicy", "KILL_EXISTING", "CANCEL_NEW", "RUN_OVERLAP"), "KILL_EXISTING"),
		def("update_config", tUpdateConfig, mkObject(tUpdateConfig)),
		opt("constraints", mapOf(tString, tString)),
		def("service", tBoolean, false), def("max_task_failures", tInteger, 1),
		def("production", tBoolean, false), def("priority", tInteger, 0),
		def("health_check_config", tHealthCheckConfig, mkObject(tHealthCheckConfig)),
		def("lifecycle", tLifecycleConfig, mkObject(tLifecycleConfig, "http", mkObject(tHTTPLifecycleConfig))),
		opt("task_links", mapOf(tString, tString)),
		def("executor_config", tExecutorConfig, mkObject(tExecutorConfig)),
		def("enable_hooks", tBoolean, false),
		opt("partition_policy", tPartitionPolicy),
		opt("sla_policy", choice(tCoordinatorSlaPolicy, tCountSlaPolicy, tPercentageSlaPolicy)),
		def("metadata", listOf(tMetadata), starlark.NewList(nil)),
		opt("container", choice(tContainer, tDocker, tMesos)))
)

// mkObject builds a schema object from name/value pairs (for defaults).
func mkObject(t *Type, kv ...any) *Object {
	o := &Object{typ: t, vals: map[string]starlark.Value{}}
	for i := 0; i < len(kv); i += 2 {
		o.vals[kv[i].(string)] = kv[i+1].(starlark.Value)
	}
	return o
}

func dictOf(kv ...string) *starlark.Dict {
	d := starlark.NewDict(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		_ = d.SetKey(starlark.String(kv[i]), starlark.String(kv[i+1]))
	}
	return d
}

// predeclared returns the names every .aurora file sees.
func predeclared() starlark.StringDict {
	d := starlark.StringDict{
		"String": tString, "Integer": tInteger, "Float": tFloat, "Boolean": tBoolean,
		"Struct": tStruct, "Empty": Empty,
		"List":      starlark.NewBuiltin("List", builtinList),
		"Map":       starlark.NewBuiltin("Map", builtinMap),
		"Choice":    starlark.NewBuiltin("Choice", builtinChoice),
		"Enum":      starlark.NewBuiltin("Enum", builtinEnum),
		"Default":   starlark.NewBuiltin("Default", builtinDefault),
		"Required":  starlark.NewBuiltin("Required", builtinRequired),
		"__class__": starlark.NewBuiltin("__class__", builtinClass),

		"BYTES": starlark.MakeInt(1), "KB": starlark.MakeInt(kb), "MB": starlark.MakeInt(mb),
		"GB": starlark.MakeInt64(gb), "TB": starlark.MakeInt64(tb),

		"order":                  starlark.NewBuiltin("order", builtinOrder),
		"SequentialTask":         starlark.NewBuiltin("SequentialTask", builtinSequentialTask),
		"SimpleTask":             starlark.NewBuiltin("SimpleTask", builtinSimpleTask),
		"combine_tasks":          starlark.NewBuiltin("combine_tasks", builtinCombine),
		"concat_tasks":           starlark.NewBuiltin("concat_tasks", builtinConcat),
		"Service":                mkObject(tJob, "service", starlark.True),
		"DisableLifecycle":       mkObject(tLifecycleConfig),
		"DefaultLifecycleConfig": mkObject(tLifecycleConfig, "http", mkObject(tHTTPLifecycleConfig)),
	}
	d["combine"] = d["combine_tasks"]
	d["concat"] = d["concat_tasks"]
	d["Tasks"] = &starlarkstruct.Module{Name: "Tasks", Members: starlark.StringDict{
		"combine": d["combine_tasks"], "concat": d["concat_tasks"],
		"simple": d["SimpleTask"], "sequential": d["SequentialTask"],
	}}
	d["Units"] = &starlarkstruct.Module{Name: "Units", Members: starlark.StringDict{
		"BYTES": d["BYTES"], "KB": d["KB"], "MB": d["MB"], "GB": d["GB"], "TB": d["TB"],
	}}
	for _, t := range []*Type{tRotatePolicy, tLogger, tResources, tProcess, tConstraint, tTask,
		tQueueUpdateStrategy, tBatchUpdateStrategy, tVariableBatchUpdateStrategy, tUpdateConfig,
		tHTTPHealthChecker, tShellHealthChecker, tHealthCheckerConfig, tHealthCheckConfig,
		tHTTPLifecycleConfig, tLifecycleConfig, tAnnouncer, tParameter, tDocker, tContainer,
		tAppcImage, tDockerImage, tMode, tVolume, tMesos, tPartitionPolicy, tMetadata,
		tExecutorConfig, tCountSlaPolicy, tPercentageSlaPolicy, tCoordinatorSlaPolicy, tJob} {
		d[t.name] = t
	}
	d["MesosJob"] = tJob
	return d
}

func asType(v starlark.Value, what string) (*Type, error) {
	switch v := v.(type) {
	case *Type:
		return v, nil
	case *fieldSpec:
		return nil, fmt.Errorf("%s: want a type, got %s", what, v)
	}
	return nil, fmt.Errorf("%s: want a type (String, Integer, a Struct, ...), got %s", what, v.Type())
}

func builtinList(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var e starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &e); err != nil {
		return nil, err
	}
	t, err := asType(e, "List")
	if err != nil {
		return nil, err
	}
	return listOf(t), nil
}

func builtinMap(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var k, v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &k, &v); err != nil {
		return nil, err
	}
	kt, err := asType(k, "Map key")
	if err != nil {
		return nil, err
	}
	vt, err := asType(v, "Map value")
	if err != nil {
		return nil, err
	}
	return mapOf(kt, vt), nil
}

func builtinChoice(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var l starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &l); err != nil {
		return nil, err
	}
	it, ok := l.(starlark.Indexable)
	if !ok {
		return nil, fmt.Errorf("choice: want a list of types, as in Choice([A, B])")
	}
	var ts []*Type
	for i := 0; i < it.Len(); i++ {
		t, err := asType(it.Index(i), "Choice")
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return choice(ts...), nil
}

func builtinEnum(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var vals []string
	for _, a := range args {
		if l, ok := a.(starlark.Indexable); ok {
			if _, str := a.(starlark.String); !str {
				for i := 0; i < l.Len(); i++ {
					s, ok := starlark.AsString(l.Index(i))
					if !ok {
						return nil, fmt.Errorf("enum: values must be strings")
					}
					vals = append(vals, s)
				}
				continue
			}
		}
		s, ok := starlark.AsString(a)
		if !ok {
			return nil, fmt.Errorf("enum: values must be strings")
		}
		vals = append(vals, s)
	}
	if len(kwargs) > 0 || len(vals) == 0 {
		return nil, fmt.Errorf("enum: want string values")
	}
	return enumOf("Enum", vals...), nil
}

func builtinDefault(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var tv, v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &tv, &v); err != nil {
		return nil, err
	}
	t, err := asType(tv, "Default")
	if err != nil {
		return nil, err
	}
	nv, err := normalize(v, t, "Default("+t.String()+")")
	if err != nil {
		return nil, err
	}
	if nv == Empty {
		nv = nil
	}
	return &fieldSpec{typ: t, def: nv}, nil
}

func builtinRequired(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var tv starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &tv); err != nil {
		return nil, err
	}
	t, err := asType(tv, "Required")
	if err != nil {
		return nil, err
	}
	return &fieldSpec{typ: t, required: true}, nil
}

// builtinClass implements the rewritten `class Name(Base): field = ...`.
func builtinClass(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("class: internal error")
	}
	name, _ := starlark.AsString(args[0])
	base, ok := args[1].(*Type)
	if !ok || base.kind != kStruct {
		return nil, fmt.Errorf("class %s: only subclasses of Struct (or of another Struct class) are supported, not %s", name, args[1])
	}
	var fields []*Field
	for _, kv := range kwargs {
		fname := string(kv[0].(starlark.String))
		switch v := kv[1].(type) {
		case *fieldSpec:
			fields = append(fields, &Field{name: fname, typ: v.typ, def: v.def, required: v.required})
		case *Type:
			fields = append(fields, &Field{name: fname, typ: v})
		default:
			return nil, fmt.Errorf("class %s: attribute %s must be a type, Default(...) or Required(...), not %s (methods and plain attributes are not supported)", name, fname, v.Type())
		}
	}
	parent := base
	if base == tStruct {
		parent = nil
	}
	t := newStruct(name, parent, fields...)
	if parent == nil {
		t.parent = tStruct
	}
	return t, nil
}

func processName(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case *Object:
		if v.typ.derives(tProcess) {
			n, ok := v.get("name")
			if s, isStr := n.(starlark.String); ok && isStr {
				return string(s), nil
			}
			return "", fmt.Errorf("order: process has no name")
		}
	}
	return "", fmt.Errorf("order: want Process objects or names, got %s", v.Type())
}

func builtinOrder(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("order: no keyword arguments")
	}
	var names []starlark.Value
	for _, a := range args {
		n, err := processName(a)
		if err != nil {
			return nil, err
		}
		names = append(names, starlark.String(n))
	}
	c := mkObject(tConstraint, "order", starlark.NewList(names))
	c.pos = callerPos(thread)
	return starlark.NewList([]starlark.Value{c}), nil
}

func builtinSequentialTask(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	v, err := tTask.CallInternal(thread, args, kwargs)
	if err != nil {
		return nil, err
	}
	t := v.(*Object)
	if _, ok := t.vals["constraints"]; ok {
		return nil, fmt.Errorf("SequentialTask: constraints are not allowed (the processes run in list order)")
	}
	procs, _ := t.get("processes")
	var ps []starlark.Value
	if l, ok := procs.(*starlark.List); ok {
		ps = listElems(l)
	}
	c, err := builtinOrder(thread, b, ps, nil)
	if err != nil {
		return nil, err
	}
	t.vals["constraints"] = c
	return t, nil
}

func builtinSimpleTask(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, cmd starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "command", &cmd); err != nil {
		return nil, err
	}
	p, err := tProcess.CallInternal(thread, nil, []starlark.Tuple{{starlark.String("name"), name}, {starlark.String("cmdline"), cmd}})
	if err != nil {
		return nil, err
	}
	return tTask.CallInternal(thread, nil, []starlark.Tuple{
		{starlark.String("name"), name},
		{starlark.String("processes"), starlark.NewList([]starlark.Value{p})},
		{starlark.String("resources"), mkObject(tResources, "cpu", starlark.Float(1), "ram", starlark.MakeInt64(gb), "disk", starlark.MakeInt64(gb))},
	})
}

func tasksOf(name string, args starlark.Tuple, kwargs []starlark.Tuple) ([]*Object, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: no keyword arguments", name)
	}
	var ts []*Object
	for _, a := range args {
		t, ok := a.(*Object)
		if !ok || !t.typ.derives(tTask) {
			return nil, fmt.Errorf("%s: want Tasks, got %s", name, a.Type())
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%s: want at least one Task", name)
	}
	return ts, nil
}

func listField(o *Object, name string) []starlark.Value {
	if v, ok := o.get(name); ok {
		if l, ok := v.(*starlark.List); ok {
			return listElems(l)
		}
	}
	return nil
}

func numField(o *Object, name, what string) (float64, error) {
	v, ok := o.get(name)
	if !ok {
		return 0, fmt.Errorf("%s: %s is not set", what, name)
	}
	f, ok := starlark.AsFloat(v)
	if !ok {
		return 0, fmt.Errorf("%s: %s must be a number here, not %s", what, name, v)
	}
	return f, nil
}

// mergeTasks combines tasks: sum or max of resources, sum or max of
// finalization_wait, processes and constraints concatenated.
func mergeTasks(thread *starlark.Thread, what string, ts []*Object, sum bool, extra []starlark.Value) (starlark.Value, error) {
	base := ts[0].clone(callerPos(thread))
	var procs, cons []starlark.Value
	var cpu, ram, disk, gpu, wait float64
	haveRes := false
	for _, t := range ts {
		procs = append(procs, listField(t, "processes")...)
		cons = append(cons, listField(t, "constraints")...)
		if r, ok := t.get("resources"); ok {
			haveRes = true
			ro := r.(*Object)
			var vs [4]float64
			for i, f := range []string{"cpu", "ram", "disk", "gpu"} {
				x, err := numField(ro, f, what)
				if err != nil {
					return nil, err
				}
				vs[i] = x
			}
			if sum {
				cpu, ram, disk, gpu = cpu+vs[0], ram+vs[1], disk+vs[2], gpu+vs[3]
			} else {
				cpu, ram, disk, gpu = max(cpu, vs[0]), max(ram, vs[1]), max(disk, vs[2]), max(gpu, vs[3])
			}
		}
		w, err := numField(t, "finalization_wait", what)
		if err != nil {
			return nil, err
		}
		if sum {
			wait = max(wait, w)
		} else {
			wait += w
		}
	}
	base.vals["processes"] = starlark.NewList(procs)
	base.vals["constraints"] = starlark.NewList(append(cons, extra...))
	base.vals["finalization_wait"] = starlark.MakeInt64(int64(wait))
	if haveRes {
		base.vals["resources"] = mkObject(tResources, "cpu", starlark.Float(cpu),
			"ram", starlark.MakeInt64(int64(ram)), "disk", starlark.MakeInt64(int64(disk)),
			"gpu", starlark.MakeInt64(int64(gpu)))
	}
	return base, nil
}

func builtinCombine(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ts, err := tasksOf(b.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	return mergeTasks(thread, b.Name(), ts, true, nil)
}

func builtinConcat(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ts, err := tasksOf(b.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	var extra []starlark.Value
	for i := 0; i+1 < len(ts); i++ {
		for _, p1 := range listField(ts[i], "processes") {
			for _, p2 := range listField(ts[i+1], "processes") {
				c, err := builtinOrder(thread, b, starlark.Tuple{p1, p2}, nil)
				if err != nil {
					return nil, err
				}
				extra = append(extra, c.(*starlark.List).Index(0))
			}
		}
	}
	return mergeTasks(thread, b.Name(), ts, false, extra)
}
