// Package observer is the Thermos-observer equivalent (`aurorabox observer`,
// reference §10.1): a read-only web UI and JSON API over the tasks that the
// executor runs under an agent.
//
// It scans the agent work dir for executor runs,
//
//	<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/
//
// ignoring the `latest` symlink, and in each run's checkpoint root
// (checkpoints/, laid out as package executor/runner documents) finds tasks
// under tasks/active/<task_id> and tasks/finished/<task_id>. A task's state
// and process runs are rebuilt from checkpoints/<task_id>/header.json and the
// runner's record stream with the executor's own planner. Nothing is ever
// written under the work dir.
//
// # Routes (Aurora's paths)
//
//	/                                        active and finished tasks
//	/main[/<type>[/<offset>[/<num>]]]        the same, one type (active|finished|all), paged
//	/task/<task_id>                          header, state history, resource usage, processes
//	/process/<task_id>/<process>             a process's runs
//	/logs/<task_id>/<process>/<run>/<stdout|stderr>    live-tailing log viewer
//	/logdata/<task_id>/<process>/<run>/<stdout|stderr> JSON chunk {offset, length, data}
//	/browse/<task_id>[/<path>]               sandbox directory listing
//	/file/<task_id>/<path>                   live-tailing file viewer (?raw=1: text/plain)
//	/filedata/<task_id>/<path>               JSON chunk {offset, length, data}
//	/download/<task_id>/<path>               the file as application/octet-stream
//	/rawtask/<task_id>                       the task's configuration JSON
//	/j/task_ids[/<type>[/<offset>[/<num>]]]  {tasks: [rows], type, offset, num, task_count}
//	/j/task_id_count                         {active, finished, all}
//	/j/task/<id>, /j/task?task_id=a,b        {<id>: task}
//	/j/process/<id>[/<process>[/<run>]]      a run (default: the latest), or every process's latest run
//	/j/processes?task_id=a,b                 {<id>: {<process>: run}}
//	/health, /vars, /vars.json               liveness and metrics
//
// and one of ours, beside Aurora's /j/ paths:
//
//	/j/browse/<task_id>[/<path>]             a sandbox directory's entries, as JSON
//
// The JSON answers are package observerapi's types, which readers such as
// the TUI decode; errors of the JSON routes are {"error": "..."}.
// /j/browse answers an observerapi.Listing: each entry's name, kind (dir,
// file, symlink with what it resolves to inside the sandbox or "outside",
// or other for a FIFO, socket or device), size, mode, mtime, and its path
// relative to the sandbox for /filedata or /j/browse. It lists what the
// /browse page lists (one function lists for both, with the confinement
// below), at most observerapi.MaxListing entries, and says when it
// stopped there.
//
// Chunks follow Thermos: offset -1 (the default) means the end of the file,
// length -1 (the default) the rest of it; length is capped (Config.MaxChunk),
// so a huge log is read a chunk at a time and never whole.
//
// # Resource usage
//
// A task's usage comes from its container's cgroup (the agent names it after
// the container id; v1 and v2) when one of its processes is in it, and
// otherwise from /proc: the sum over the process trees of its running runs.
// A process's usage is always its run's process tree from /proc. CPU is a rate
// in cores (1.0 = one core busy) between two samples, RAM is resident bytes,
// disk is the sandbox's allocated bytes (cached for Config.DiskInterval).
// A run's pid is trusted only while /proc says that process started when the
// run did, so a recycled pid is not measured.
//
// # Confinement
//
// Sandbox paths come from the URL, one segment at a time: empty, `.` and `..`
// segments, NUL bytes and encoded slashes are refused before any file system
// access, and files are then opened with package sandboxfs (as the agent's
// /files API opens them): beneath an [os.Root] on the sandbox, so neither
// `..` nor a symlink (absolute, or relative and climbing out) can reach
// outside it, even if the task swaps files while we look, and without
// blocking: a FIFO, socket or device is refused with a 400. The run
// directory is opened beneath the agent's slaves directory, the sandbox
// beneath the run directory (not from the header's path, which the task's
// user could rewrite), and the checkpoints that the scan lists and the disk
// usage walk are read the same way. Every route that reads the work dir is
// bounded per client address and in total (Config.FilesLimiter; 429 or 503
// beyond it). Files
// are served as text/plain or application/octet-stream with
// X-Content-Type-Options: nosniff; pages are html/template with a
// Content-Security-Policy that allows only our own script.
package observer
