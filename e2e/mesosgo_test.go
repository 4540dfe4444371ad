//go:build e2e

package e2e

// Mesos as a platform (issue 16): mesos-go's own example programs, built
// from github.com/mesos/mesos-go@v0.0.11 as a new user would build them,
// against `aurorabox up` beside a RUNNING Aurora job. msh is a second
// framework (a v1 scheduler that runs one command task and exits); mwatch
// follows the master's v1 operator event stream (SUBSCRIBE).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/internal/syncbuf"
)

// mesosGo holds msh and mwatch, built once per test binary into a shared
// temp dir (removed by TestMain).
var mesosGo struct {
	once        sync.Once
	dir         string
	msh, mwatch string
	download    error // fetching the module failed (mesostest.ErrMesosGoFetch)
	err         error // anything else failed
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mesosGo.dir != "" {
		os.RemoveAll(mesosGo.dir)
	}
	os.Exit(code)
}

// mesosGoTools returns the paths of msh and mwatch, building them on the
// first call in a throwaway module (GOWORK=off, -mod=mod) so that they
// never become dependencies of ours. A module download that fails fails the
// test (CI has the Go module proxy) unless AURORABOX_REQUIRE_MESOSGO=0,
// which skips instead.
func mesosGoTools(t *testing.T) (msh, mwatch string) {
	t.Helper()
	mesosGo.once.Do(buildMesosGo)
	if mesosGo.download != nil {
		if os.Getenv("AURORABOX_REQUIRE_MESOSGO") == "0" {
			t.Skipf("mesos-go %s could not be fetched: %v", mesostest.MesosGoVersion, mesosGo.download)
		}
		t.Fatalf("mesos-go %s could not be fetched (AURORABOX_REQUIRE_MESOSGO=0 skips): %v", mesostest.MesosGoVersion, mesosGo.download)
	}
	if mesosGo.err != nil {
		t.Fatal(mesosGo.err)
	}
	return mesosGo.msh, mesosGo.mwatch
}

func buildMesosGo() {
	dir, err := os.MkdirTemp("", "abe2e-mesosgo")
	if err != nil {
		mesosGo.err = err
		return
	}
	mesosGo.dir = dir
	// The tasks' users need not read it: msh and mwatch run as the test.
	bins, err := mesostest.BuildMesosGo(dir, "msh", "mwatch")
	switch {
	case errors.Is(err, mesostest.ErrMesosGoFetch):
		mesosGo.download = err
	case err != nil:
		mesosGo.err = err
	default:
		mesosGo.msh, mesosGo.mwatch = bins["msh"], bins["mwatch"]
	}
}

// defaultPorts are `aurorabox up`'s documented fixed ports, by the config
// key whose environment variable (AURORABOX_<KEY>_PORT) sets each.
var defaultPorts = []struct {
	key  string
	port int
}{{"ZOOKEEPER", 2181}, {"MASTER", 5050}, {"AGENT", 5051}, {"SCHEDULER", 8081}, {"OBSERVER", 1338}}

// TestMesosGoFixedPorts: on `--ports fixed` (the default ports, 5050 for
// the master), msh and mwatch need no address at all: their defaults are
// the master's. The appliance's ports are the configured ones (the
// defaults unless AURORABOX_<KEY>_PORT says otherwise); when one of them is
// taken (another appliance runs here) the test skips, unless
// AURORABOX_REQUIRE_FIXED_PORTS=1.
func TestMesosGoFixedPorts(t *testing.T) {
	msh, mwatch := mesosGoTools(t)
	for _, p := range defaultPorts {
		port := p.port
		if v := os.Getenv("AURORABOX_" + p.key + "_PORT"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("AURORABOX_%s_PORT=%q: %v", p.key, v, err)
			}
			port = n
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			if os.Getenv("AURORABOX_REQUIRE_FIXED_PORTS") == "1" {
				t.Fatalf("fixed port %d (%s) is taken: %v", port, strings.ToLower(p.key), err)
			}
			t.Skipf("fixed port %d (%s) is taken, maybe by another appliance: %v", port, strings.ToLower(p.key), err)
		}
		ln.Close()
	}
	c := newCluster(t)
	if r := c.run("up", "--detach", "--ports", "fixed"); r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(c.dir, "logs", "aurorabox.log"))
		t.Fatalf("up --detach --ports fixed: exit %d\n%s%s\nsupervisor log:\n%s", r.code, r.stdout, r.stderr, log)
	}
	testMesosGo(t, c, msh, mwatch)
}

// TestMesosGoAutoPorts: on `--ports auto`, msh gets the master's host:port
// (-master) and mwatch its host and port apart (-master, -port), as each
// program expects, read from `aurorabox status`.
func TestMesosGoAutoPorts(t *testing.T) {
	msh, mwatch := mesosGoTools(t)
	c := newCluster(t)
	c.up()
	testMesosGo(t, c, msh, mwatch)
}

// mesosGoConfig is the Aurora job that runs while msh runs its command.
const mesosGoConfig = `
sleeper = Process(name = 'sleeper', cmdline = 'sleep 600')
task = SequentialTask(processes = [sleeper], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))
jobs = [Service(cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'beside', task = task)]
`

// Bounds of the programs: msh must have run its command to the end, and
// mwatch must have printed the Aurora task's events, within these.
const (
	mshTimeout    = 60 * time.Second
	mwatchTimeout = 30 * time.Second
)

func testMesosGo(t *testing.T, c *cluster, msh, mwatch string) {
	master := c.component("master").Address
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		t.Fatalf("master address %q: %v", master, err)
	}
	// On the default port the programs' defaults are the master's address.
	var mshArgs, mwatchArgs []string
	if master != "127.0.0.1:5050" {
		mshArgs = []string{"-master", master}
		mwatchArgs = []string{"-master", host, "-port", port}
	}

	// mwatch follows the master's event stream from before the Aurora job
	// exists, so that the job's task is ADDED while it watches.
	wctx, stopWatch := context.WithCancel(context.Background())
	watch := exec.CommandContext(wctx, mwatch, mwatchArgs...)
	var watchOut syncbuf.Buffer
	watch.Stdout, watch.Stderr = &watchOut, &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan error, 1)
	go func() { watchDone <- watch.Wait() }()
	t.Cleanup(func() {
		stopWatch()
		<-watchDone
	})
	watchExited := func() (error, bool) {
		select {
		case err := <-watchDone:
			watchDone <- err
			return err, true
		default:
			return nil, false
		}
	}
	// mwatch prints nothing on SUBSCRIBED: a mwatch that still runs after
	// this while has subscribed (or failed in a way it keeps quiet about,
	// which the missing events below then show).
	time.Sleep(2 * time.Second)
	if err, exited := watchExited(); exited {
		t.Errorf("mwatch %s exited before the Aurora job was created: %v\n%s", strings.Join(mwatchArgs, " "), err, watchOut.String())
	}

	cfg := filepath.Join(c.dir, "beside.aurora")
	if err := os.WriteFile(cfg, []byte(mesosGoConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	key := "devcluster/www-data/test/beside"
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	auroraTask, ok := c.jobStatusJQ(key, ".[0].active[0].assignedTask.taskId")
	if !ok || auroraTask == "" || auroraTask == "null" {
		t.Fatalf("the Aurora task's id: %q", auroraTask)
	}

	// msh runs `echo hello` as www-data (the Aurora job's user: msh's
	// default user is root) and exits 0 once its task is FINISHED.
	mctx, cancel := context.WithTimeout(context.Background(), mshTimeout)
	defer cancel()
	shell := exec.CommandContext(mctx, msh, append(mshArgs, "-user", "www-data", "--", "echo", "hello")...)
	var shellOut syncbuf.Buffer
	shell.Stdout, shell.Stderr = &shellOut, &shellOut
	start := time.Now()
	err = shell.Run()
	took := time.Since(start)
	switch {
	case mctx.Err() != nil:
		t.Errorf("msh %s -- echo hello did not finish in %s\n%s", strings.Join(mshArgs, " "), mshTimeout, shellOut.String())
	case err != nil:
		t.Errorf("msh %s -- echo hello: %v\n%s", strings.Join(mshArgs, " "), err, shellOut.String())
	case !strings.Contains(shellOut.String(), "TASK_FINISHED"):
		t.Errorf("msh exited 0 without its task FINISHED:\n%s", shellOut.String())
	default:
		t.Logf("msh ran echo hello to TASK_FINISHED in %s", took.Round(time.Millisecond))
		// The command's stdout is in its sandbox, under msh's framework.
		m := regexp.MustCompile(`FrameworkID "([^"]+)"`).FindStringSubmatch(shellOut.String())
		if m == nil {
			t.Errorf("msh printed no framework id:\n%s", shellOut.String())
			break
		}
		outs, _ := filepath.Glob(filepath.Join(c.dir, "mesos", "slaves", "*", "frameworks", m[1], "executors", "*", "runs", "latest", "stdout"))
		var got []string
		for _, p := range outs {
			b, _ := os.ReadFile(p)
			got = append(got, string(b))
		}
		if len(got) != 1 || !strings.Contains(got[0], "hello\n") {
			t.Errorf("msh's task's stdout (%v): %q, want hello", outs, got)
		}
	}
	if st := c.taskStatus(key, 0); st != "RUNNING" {
		t.Errorf("the Aurora task is %s after msh, want RUNNING", st)
	}

	// mwatch printed the Aurora task's TASK_ADDED and TASK_UPDATED lines
	// (the task id is on both).
	events := func() (added, updated bool) {
		for _, l := range strings.Split(watchOut.String(), "\n") {
			if !strings.Contains(l, auroraTask) {
				continue
			}
			added = added || strings.HasPrefix(l, "TASK_ADDED ")
			updated = updated || strings.HasPrefix(l, "TASK_UPDATED ")
		}
		return added, updated
	}
	deadline := time.Now().Add(mwatchTimeout)
	for {
		added, updated := events()
		if added && updated {
			break
		}
		err, exited := watchExited()
		if exited || time.Now().After(deadline) {
			how := fmt.Sprintf("in %s", mwatchTimeout)
			if exited {
				how = fmt.Sprintf("before it exited (%v)", err)
			}
			t.Fatalf("mwatch %s printed TASK_ADDED %v and TASK_UPDATED %v for the Aurora task %s %s; want both\n%s",
				strings.Join(mwatchArgs, " "), added, updated, auroraTask, how, watchOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err, exited := watchExited(); exited && !errors.Is(err, context.Canceled) {
		t.Errorf("mwatch exited: %v\n%s", err, watchOut.String())
	}
}
