// Package tui is `aurorabox tui`: a terminal UI (bubbletea, bubbles and
// lipgloss) over a cluster's public APIs only, so it can point at any
// cluster named in clusters.json:
//
//   - the appliance overview (components, health, ports, restarts) from the
//     `aurorabox status --json` document, and the agents from the master's
//     /master/state;
//   - jobs by role and environment with instance state counts, a job's
//     instances and a task's details from the scheduler's /api
//     (getJobs, getTasksWithoutConfigs, killTasks, restartShards);
//   - a task's processes, its logs and its sandbox from the observer's JSON
//     API (/j/task, /j/process, /logdata, /filedata, and the directory
//     listing /j/browse), decoded into package observerapi's types, the
//     ones the observer writes; the TUI reads no HTML.
//
// The Model is a plain bubbletea model over a Source interface; HTTPSource
// is the real one and tests feed fakes. Every view reloads about every two
// seconds (a tea.Tick); the old data stays on screen until the new arrives,
// so nothing flickers, and bubbletea redraws only the lines that changed.
//
// Keys: arrows or j/k move, enter drills down, esc goes back, / filters a
// list (searches in a log or file), l opens logs, f the sandbox, k kills
// and r restarts an instance (both asking first), ? shows help, q quits.
// In the instance and task views, where k kills, ↑ moves up. Logs and
// files are offered only for a task the observer knows: a finished task's
// sandbox goes with the agent's garbage collection, and then the status
// line says so.
package tui
