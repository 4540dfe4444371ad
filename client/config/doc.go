// Package config evaluates Aurora's .aurora job configuration files.
//
// A .aurora file is Python with Pystachio templating. We evaluate it with
// Starlark (go.starlark.net), with Aurora's schema predeclared: the
// structs (Job, Service, Task, Process, Resources, HealthCheckConfig,
// UpdateConfig, Announcer, PartitionPolicy, the SLA policies, containers,
// ...), the helpers (order, SequentialTask, SimpleTask, combine_tasks and
// concat_tasks, also as combine/concat and Tasks.*), the units (BYTES, KB,
// MB, GB, TB) and include(). The API:
//
//	f, err := config.LoadFile("hello.aurora", config.Options{Bindings: binds})
//	job, err := f.Select("devcluster", "www-data", "prod", "hello")
//	err = job.Validate()            // the client-side checks
//	jc, err := job.JobConfiguration() // for createJob
//	data, err := job.ExecutorData()   // TaskConfig.executorConfig.data
//
// LoadJSON and ParseJSON read --read-json input instead.
//
// # Pystachio semantics
//
// Struct values are immutable. Calling one with keyword arguments returns
// a modified copy (job(name='x')); obj.field() reads a field and
// obj.field(v) returns a copy with it set, as in pystachio; .bind(k=v) and
// .bind({'a.b': v}) attach bindings. Strings may hold {{mustache}}
// references; they are resolved when a job is selected, innermost first
// and repeatedly ({{metavar{{n}}}} works). A reference is looked up in
// the object holding the string, then outwards through the enclosing
// objects (Process, Task, Job): at each level first the object's
// bindings (the newest first) and then its own fields, so {{name}} in a
// Process is the process's name and {{role}} anywhere in a job is the
// job's role. A value found in a field is itself interpolated where the
// field lives (so a Job's default name {{task.name}} resolves the Task's
// default {{processes[0].name}} in the Task); a value found in a binding
// is interpolated where it was referenced. References step into structs,
// lists and maps: {{profile.cmd}}, {{fib[4]}}, {{first[Kent]}}. The
// command line's --bind values (Options.Bindings) are bindings on the job
// that win over all others. {{mesos.role}} and {{thermos.user}} stand for
// {{role}}, {{mesos.cluster}} for {{cluster}}; other {{thermos.*}} and
// {{mesos.*}} references are left for the executor. Any other reference
// left unresolved makes Select fail with an UnboundError naming it.
// Every {{thermos.ports[name]}} becomes a requested named port (Job.Ports),
// with Announcer portmap aliases resolved.
//
// Field values are checked against the schema when an object is built
// (an unknown field, or 'abc' for an Integer, is an error at that line);
// a string holding a mustache is checked once interpolated.
//
// # Python compatibility layer
//
// Starlark is close to Python, and the following Python statements it
// lacks are rewritten line by line (line numbers stay the same):
//
//   - class Profile(Struct): with fields name = Default(Type, value),
//     Required(Type) or a bare Type, docstrings, comments and pass;
//     subclasses of such classes inherit and may override fields.
//   - import getpass, os, os.path, hashlib, json, math (the allow-list);
//     import x as y; from os import getenv [as g]. getpass.getuser() is
//     Options.User (default: the invoking user); os.getenv and os.environ
//     read Options.Env (default: the process environment); hashlib has
//     md5, sha1, sha256 and sha512 with hexdigest() and update(); json has
//     dumps and loads; os.path has join, basename and dirname.
//   - include('other.aurora'), a top-level statement with a literal path
//     relative to the including file: the included file is evaluated
//     first, on its own, and its globals become visible to the includer.
//     (Python's include shares one namespace both ways; ours does not let
//     the included file see the includer's names.)
//
// Starlark itself provides ”' and """ strings, % formatting, str.format,
// lambda, comprehensions and def. Statements with no Starlark equivalent
// (try, with, raise, global, del, assert, yield, exec, decorators, the
// Python 2 print statement, methods in Struct classes, from x import *)
// and other modules are reported as errors naming the file and line, as
// is load(). open() reads only, relative to the calling config's
// directory, so that hashlib can digest a file the config ships. The Python ** operator and the 'is' operator are
// syntax errors with a hint. Evaluation is bounded (50M Starlark steps)
// so that a runaway loop is an error rather than a hang.
//
// Errors carry file:line:col. Typos in names and fields get "did you
// mean" hints.
package config
