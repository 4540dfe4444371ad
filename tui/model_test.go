package tui

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	// Colours on, so that the tests see the styled output the terminal
	// gets; the goldens are stripped of them.
	lipgloss.SetColorProfile(termenv.ANSI256)
	os.Exit(m.Run())
}

// newModel is a Model on f at 80x24 with its first load done.
func newModel(t *testing.T, f *fake) *Model {
	t.Helper()
	m := New(f, Options{Cluster: "devcluster", Now: func() time.Time { return t0 }})
	send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	settle(t, m, m.Init())
	return m
}

// send gives msg to the model and runs what it asks for.
func send(t *testing.T, m *Model, msg tea.Msg) {
	t.Helper()
	_, cmd := m.Update(msg)
	settle(t, m, cmd)
}

// settle runs cmd (loads, actions) and feeds its messages back, as the
// bubbletea runtime would, until nothing is left.
func settle(t *testing.T, m *Model, cmd tea.Cmd) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for n := 0; len(queue) > 0; n++ {
		if n > 100 {
			t.Fatal("commands do not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
		default:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// press sends keys: names (enter, esc, up, down, tab, pgdown, ...) or
// runes.
func press(t *testing.T, m *Model, keys ...string) {
	t.Helper()
	names := map[string]tea.KeyType{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"tab": tea.KeyTab, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "home": tea.KeyHome, "end": tea.KeyEnd,
		"left": tea.KeyLeft, "right": tea.KeyRight, "ctrl+c": tea.KeyCtrlC, "backspace": tea.KeyBackspace, "space": tea.KeySpace}
	for _, k := range keys {
		if kt, ok := names[k]; ok {
			send(t, m, tea.KeyMsg{Type: kt})
		} else {
			send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
	}
}

// screen is what a terminal shows of View: no colours, no trailing
// spaces. It checks that View fills the window exactly.
func screen(t *testing.T, m *Model) string {
	t.Helper()
	v := m.View()
	lines := strings.Split(v, "\n")
	if len(lines) != m.height {
		t.Errorf("View has %d lines, want the window's %d", len(lines), m.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Errorf("line %d is %d cells wide, more than the window's %d: %q", i, w, m.width, ansi.Strip(l))
		}
		lines[i] = strings.TrimRight(ansi.Strip(l), " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// golden compares the screen with testdata/<name>.txt (go test -update
// rewrites it).
func golden(t *testing.T, m *Model, name string) {
	t.Helper()
	got := screen(t, m)
	path := filepath.Join("testdata", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func contains(t *testing.T, m *Model, wants ...string) {
	t.Helper()
	s := screen(t, m)
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("screen lacks %q:\n%s", w, s)
		}
	}
}

func TestOverview(t *testing.T) {
	m := newModel(t, newFake())
	golden(t, m, "overview_80x24")
	contains(t, m, "Appliance devcluster healthy · up 1h", "observer: exited: exit status 1", "0.3 / 4")
}

func TestOverviewWithoutStatus(t *testing.T) {
	f := newFake()
	f.status, f.statusErr = nil, ErrUnavailable
	f.agents, f.agentsErr = nil, ErrUnavailable
	m := newModel(t, f)
	contains(t, m, "No appliance status for this cluster", "0 components, 0 agents · enter: jobs")
	f.status, f.statusErr = newFake().status, nil
	f.status.Running = false
	send(t, m, tickMsg(t0))
	contains(t, m, "The appliance is not running (data dir /home/me/.aurorabox)")
}

func TestJobs(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter")
	golden(t, m, "jobs_80x24")
	// Instance states count each instance's current task: instance 1's
	// FAILED ancestor does not count.
	contains(t, m, "www-data   prod     hello               3 2 RUNNING, 1 PENDING", "1 FINISHED", "cron_report         1 cron 0 * * * *")
}

func TestInstances(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "down", "enter")
	golden(t, m, "instances_80x24")
	contains(t, m, "› www-data/prod/hello", "5m 4m ago RUNNING", "30s 30s ago PENDING: Insufficient resources…")
}

func TestTask(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "down", "enter", "enter")
	golden(t, m, "task_80x24")
	contains(t, m, "Task "+helloID, "usage cpu 0.05 · ram 5.0 MiB · disk 20.0 KiB · thermos ACTIVE", "ports http=31000")
}

func TestLogs(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "enter", "enter")
	// cleanup never ran: no log.
	press(t, m, "end", "enter")
	contains(t, m, "cleanup has not run yet: no logs")
	// The cursor started on the running process.
	press(t, m, "esc", "esc", "enter", "enter")
	if r, _ := m.top().base().list.current(); r.key != "hello" {
		t.Fatalf("the cursor starts on %q", r.key)
	}
	press(t, m, "enter")
	golden(t, m, "log_stdout_80x24")
	contains(t, m, "hello · run 1 · [stdout] stderr", "30 lines · following")

	// It follows the log as it grows, on the refresh tick.
	f.appendLog(helloID+"/hello/1/stdout", "hello again\n")
	send(t, m, tickMsg(t0))
	s := screen(t, m)
	lines := strings.Split(s, "\n")
	if got := lines[len(lines)-4]; got != "hello again" {
		t.Errorf("last log line %q, want the new one:\n%s", got, s)
	}
	// Paused: scrolling up stops following; new lines do not move it.
	press(t, m, "up")
	before := screen(t, m)
	f.appendLog(helloID+"/hello/1/stdout", "more\n")
	send(t, m, tickMsg(t0))
	if after := screen(t, m); strings.Contains(after, "more\n") || !strings.Contains(after, "32 lines · paused") {
		t.Errorf("paused log moved:\n%s\nbefore:\n%s", after, before)
	}
	press(t, m, "F")
	contains(t, m, "more\n", "following")

	// stderr: escape sequences are dropped, tabs expanded.
	press(t, m, "s")
	golden(t, m, "log_stderr_80x24")
	contains(t, m, "warning: red text       and a tab", "hello · run 1 · stdout [stderr]")
	press(t, m, "tab")
	contains(t, m, "[stdout] stderr")
}

func TestLogFromInstances(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "down", "enter", "l")
	// l on an instance picks its running process.
	contains(t, m, "hello · run 1 · [stdout] stderr", "hello world")
}

func TestLogSearch(t *testing.T) {
	f := newFake()
	f.logs[helloID+"/hello/1/stdout"] = strings.Repeat("hello world\n", 40) + "needle one\n" + strings.Repeat("hello world\n", 40) + "second NEEDLE\n" + strings.Repeat("x\n", 40)
	m := newModel(t, f)
	press(t, m, "enter", "down", "enter", "l")
	press(t, m, "/", "n", "e", "e", "d")
	contains(t, m, "/need")
	press(t, m, "l", "e", "enter")
	// Following the end, a search goes to the last match.
	contains(t, m, `"needle" match 2 of 2`, "second NEEDLE", "paused")
	if strings.Contains(screen(t, m), "needle one") {
		t.Error("both matches on screen; the test needs them apart")
	}
	press(t, m, "N")
	contains(t, m, `"needle" match 1 of 2`, "needle one")
	press(t, m, "n")
	contains(t, m, `"needle" match 2 of 2`)
	press(t, m, "n")
	contains(t, m, `"needle" match 1 of 2`)
	// From a paused position, a new search starts at the top line.
	press(t, m, "g", "/", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "N", "E", "E", "D", "L", "E", "enter")
	contains(t, m, `"NEEDLE" match 1 of 2`, "needle one")
	// esc clears the search, then goes back.
	press(t, m, "esc")
	contains(t, m, "122 lines · paused (F follows)")
	press(t, m, "esc")
	contains(t, m, "› www-data/prod/hello", "3 instances")
}

func TestFiles(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "down", "enter", "f")
	golden(t, m, "files_80x24")
	// A symlink out of the sandbox is not opened.
	press(t, m, "end", "enter")
	contains(t, m, "up-link leads out of the sandbox")
	press(t, m, "home", "enter")
	contains(t, m, "sandbox › .logs", "hello/", "setup/")
	// Nor is a FIFO.
	press(t, m, "end", "enter")
	contains(t, m, "pipe is not a regular file (prw-r--r--)")
	if _, ok := m.top().(*filesView); !ok {
		t.Fatalf("enter on a FIFO opened %q", m.top().title())
	}
	press(t, m, "esc", "down", "enter")
	golden(t, m, "file_80x24")
	contains(t, m, "/hello_world.aurora", "3 lines · paused")
	press(t, m, "esc", "esc")
	contains(t, m, "› www-data/prod/hello")
}

func TestHelp(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "?")
	golden(t, m, "help_80x24")
	press(t, m, "x")
	contains(t, m, "Appliance devcluster")
}

func TestKillAsksFirst(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "enter", "down", "k")
	golden(t, m, "confirm_kill_80x24")
	contains(t, m, "Kill instance 1 of www-data/prod/hello? [y/N]")
	press(t, m, "n")
	contains(t, m, "cancelled")
	for _, c := range f.callList() {
		if strings.HasPrefix(c, "killTasks") {
			t.Fatalf("killed without a yes: %v", f.callList())
		}
	}
	press(t, m, "k", "y")
	contains(t, m, "asked the scheduler to kill www-data/prod/hello/1")
	calls := f.callList()
	if !contains1(calls, "killTasks www-data/prod/hello [1]") {
		t.Errorf("calls %v", calls)
	}
	// The view reloads after the action.
	if last := calls[len(calls)-1]; last != "getTasksWithoutConfigs www-data/prod/hello []" {
		t.Errorf("no reload after the kill: %v", calls)
	}
}

func TestRestartAsksFirst(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "enter", "enter", "r")
	contains(t, m, "Restart instance 0 of www-data/prod/hello? [y/N]")
	press(t, m, "y")
	if !contains1(f.callList(), "restartShards www-data/prod/hello [0]") {
		t.Errorf("calls %v", f.callList())
	}
	// k in the task view kills the task's instance.
	press(t, m, "k", "Y")
	if !contains1(f.callList(), "killTasks www-data/prod/hello [0]") {
		t.Errorf("calls %v", f.callList())
	}
}

func contains1(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFilter(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "/", "w", "w", "w")
	contains(t, m, "/www")
	press(t, m, "enter")
	contains(t, m, `2 of 3 jobs match "www"`)
	if strings.Contains(screen(t, m), "cron_report") {
		t.Error("the filter left cron_report in")
	}
	// Enter now opens the first match; esc comes back to the filtered list.
	press(t, m, "enter")
	contains(t, m, "› www-data/prod/hello")
	press(t, m, "esc")
	contains(t, m, `2 of 3 jobs match "www"`)
	// esc clears the filter before it goes back.
	press(t, m, "esc")
	contains(t, m, "3 jobs by role/env", "cron_report")
	press(t, m, "/", "z", "z", "enter")
	contains(t, m, `(nothing matches "zz")`)
	press(t, m, "/", "esc")
	contains(t, m, "3 jobs by role/env")
}

func TestNavigationKeys(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter")
	sel := func() string {
		r, _ := m.top().base().list.current()
		return r.key
	}
	if sel() != "ads/staging/cron_report" {
		t.Fatalf("first row %q", sel())
	}
	press(t, m, "j", "j")
	if sel() != "www-data/test/batch" {
		t.Errorf("after jj: %q", sel())
	}
	press(t, m, "k")
	if sel() != "www-data/prod/hello" {
		t.Errorf("after k: %q", sel())
	}
	press(t, m, "G")
	if sel() != "www-data/test/batch" {
		t.Errorf("after G: %q", sel())
	}
	press(t, m, "g", "up", "down", "down", "down", "down")
	if sel() != "www-data/test/batch" {
		t.Errorf("down past the end: %q", sel())
	}
}

// The cursor stays on its row when a reload adds rows above it.
func TestCursorKeepsItsRow(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "down")
	f.jobs = append(f.jobs, f.jobs[0])
	f.jobs[len(f.jobs)-1].Key.Role = "aaa"
	send(t, m, tickMsg(t0))
	contains(t, m, "4 jobs")
	if r, _ := m.top().base().list.current(); r.key != "www-data/test/batch" {
		t.Errorf("cursor on %q after the reload", r.key)
	}
}

// A load that answers after its view was reset (a stream switch) is
// dropped, and a view that is gone ignores its answers.
func TestStaleLoads(t *testing.T) {
	f := newFake()
	m := newModel(t, f)
	press(t, m, "enter", "down", "enter", "l")
	v := m.top().(*textView)
	old := m.load(v) // loading is false after the settle, so this starts one
	if old == nil {
		t.Fatal("no load started")
	}
	press(t, m, "s") // reset: a new generation
	msg := old()
	send(t, m, msg)
	if v.stream != "stderr" || strings.Contains(strings.Join(v.pane.lines, "\n"), "hello world") {
		t.Errorf("a stale stdout chunk got into the stderr pane: %q", v.pane.lines)
	}
	press(t, m, "esc")
	send(t, m, loadedMsg{id: v.id, gen: v.gen, data: textData{}})
}

func TestErrorsShowAndClear(t *testing.T) {
	f := newFake()
	f.tasksErr = os.ErrDeadlineExceeded
	m := newModel(t, f)
	press(t, m, "enter")
	contains(t, m, "error: i/o timeout")
	f.tasksErr = nil
	send(t, m, tickMsg(t0))
	contains(t, m, "3 jobs by role/env")
}

func TestResize(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "down", "enter", "enter", "enter")
	for _, size := range [][2]int{{120, 40}, {40, 10}, {80, 24}, {20, 6}, {200, 60}} {
		send(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		screen(t, m) // checks the size
	}
	send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	s := screen(t, m)
	if !strings.Contains(s, "hello world") || strings.Count(s, "hello world") != 26 {
		t.Errorf("at 100x30 the log shows %d lines of 26:\n%s", strings.Count(s, "hello world"), s)
	}
	// Every view fits in 80x24 and in a small window.
	for _, keys := range [][]string{{"esc"}, {"esc"}, {"esc"}, {"esc"}, {"?"}} {
		press(t, m, keys...)
		for _, size := range [][2]int{{80, 24}, {30, 8}} {
			send(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			screen(t, m)
		}
	}
}

func TestQuit(t *testing.T) {
	m := newModel(t, newFake())
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil || !reflect.DeepEqual(cmd(), tea.Quit()) {
		t.Fatal("q does not quit")
	}
	m = newModel(t, newFake())
	press(t, m, "enter", "/")
	// q in the filter input is text, ctrl+c quits anyway.
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd != nil && reflect.DeepEqual(cmd(), tea.Quit()) {
		t.Fatal("q in the filter quit")
	}
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil || !reflect.DeepEqual(cmd(), tea.Quit()) {
		t.Fatal("ctrl+c does not quit")
	}
}

// Keys typed quickly arrive as one message of several runes.
func TestBurstOfKeys(t *testing.T) {
	m := newModel(t, newFake())
	press(t, m, "enter", "jj")
	if r, _ := m.top().base().list.current(); r.key != "www-data/test/batch" {
		t.Errorf("jj as one message moved to %q", r.key)
	}
}

func TestTicks(t *testing.T) {
	m := New(newFake(), Options{Refresh: time.Millisecond, Now: func() time.Time { return t0 }})
	if cmd := m.tick(); cmd == nil {
		t.Fatal("no tick")
	} else if _, ok := cmd().(tickMsg); !ok {
		t.Fatal("the tick is not a tickMsg")
	}
	// A tick while a load runs starts no second one.
	first := m.load(m.top())
	if first == nil || m.load(m.top()) != nil {
		t.Fatal("two loads at once")
	}
}
