package zkcompat

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestZkCli drives Apache ZooKeeper's own CLI, zkCli.sh, against both
// targets: a script on stdin (one JVM for many commands) and one command
// given as arguments.
func TestZkCli(t *testing.T) {
	r := needReal(t)
	if r.zkCli == "" {
		missingReal(t, "zkCli.sh not found under /usr/share/zookeeper/bin")
	}
	for _, st := range targets() {
		t.Run(st.name, func(t *testing.T) {
			tg := st.start(t)
			t.Run("script", func(t *testing.T) { testZkCliScript(t, r, tg) })
			t.Run("args", func(t *testing.T) { testZkCliArgs(t, r, tg) })
		})
	}
}

func runZkCli(t *testing.T, r *realZK, addr string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.zkCli, append([]string{"-server", addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Fatalf("zkCli.sh %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// expectInOrder checks that each expected line (a regexp, anchored) appears
// in out, in this order.
func expectInOrder(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	i := 0
	for _, w := range want {
		re := regexp.MustCompile(`^` + w + `$`)
		found := false
		for ; i < len(lines); i++ {
			if re.MatchString(strings.TrimRight(lines[i], "\r")) {
				found = true
				i++
				break
			}
		}
		if !found {
			t.Errorf("zkCli output lacks a line matching %q (in order); output:\n%s", w, out)
			return
		}
	}
}

func testZkCliScript(t *testing.T, r *realZK, tg *Target) {
	digest := zk.DigestACL(zk.PermAll, "cliuser", "clipass")[0].ID
	script := strings.Join([]string{
		"create /zkcli hello",
		"get /zkcli",
		"set /zkcli world",
		"get -s /zkcli",
		"create /zkcli/child c",
		"create -e /zkcli/eph e",
		"create -s /zkcli/seq- s",
		"create -e -s /zkcli/eseq- s",
		"ls /zkcli",
		"stat /zkcli",
		"get /zkcli/missing",
		"create /zkcli x",
		"set -v 7 /zkcli y",
		"delete /zkcli",
		"delete /zkcli/child",
		"sync /zkcli",
		"create /zkcli/ro r",
		"setAcl /zkcli/ro world:anyone:r",
		"getAcl /zkcli/ro",
		"set /zkcli/ro nope",
		"addauth digest cliuser:clipass",
		"create /zkcli/private p digest:" + digest + ":cdrwa",
		"get /zkcli/private",
		"getAcl /zkcli/private",
		"deleteall /zkcli",
		"ls /zkcli",
		"sync /", // zkCli.sh exits with the status of the last command
		"quit",
	}, "\n") + "\n"
	out := runZkCli(t, r, tg.Addr, script)
	stat := func(cversion, version, length, kids string) []string {
		return []string{
			`cZxid = 0x[0-9a-f]+`, `ctime = .+`, `mZxid = 0x[0-9a-f]+`, `mtime = .+`, `pZxid = 0x[0-9a-f]+`,
			`cversion = ` + cversion, `dataVersion = ` + version, `aclVersion = 0`, `ephemeralOwner = 0x0`,
			`dataLength = ` + length, `numChildren = ` + kids,
		}
	}
	var want []string
	// zkCli's watcher thread prints the session's SyncConnected event
	// whenever it comes, before or after the first commands' output.
	if !regexp.MustCompile(`(?m)^WatchedEvent state:SyncConnected type:None path:null$`).MatchString(out) {
		t.Errorf("zkCli output lacks the SyncConnected event; output:\n%s", out)
	}
	want = append(want, `Created /zkcli`, `hello`, `world`)
	want = append(want, stat("0", "1", "5", "0")...)
	want = append(want, `Created /zkcli/child`, `Created /zkcli/eph`, `Created /zkcli/seq-0000000002`,
		`Created /zkcli/eseq-0000000003`, `\[.*\]`)
	want = append(want, stat("4", "1", "5", "4")...)
	want = append(want,
		`Node does not exist: /zkcli/missing`,
		`Node already exists: /zkcli`,
		`version No is not valid : /zkcli`,
		`Node not empty: /zkcli`,
		`Sync is OK`,
		`Created /zkcli/ro`,
		`'world,'anyone`, `: r`,
		`Insufficient permission : /zkcli/ro`,
		`Created /zkcli/private`,
		`p`,
		`'digest,'`+regexp.QuoteMeta(digest), `: cdrwa`,
		`Node does not exist: /zkcli`,
		`Sync is OK`,
	)
	expectInOrder(t, out, want)

	// The ls line lists exactly the four children, in any order.
	m := regexp.MustCompile(`(?m)^\[(.*)\]$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ls output")
	}
	kids := strings.Split(m[1], ", ")
	sort.Strings(kids)
	if got := strings.Join(kids, ","); got != "child,eph,eseq-0000000003,seq-0000000002" {
		t.Errorf("ls /zkcli = [%s]", m[1])
	}
	// Nothing the CLI did survives: ephemerals went with its session and
	// deleteall removed the rest.
	c, _ := connect(t, tg.Addr, 10*time.Second)
	if ok, _, _ := c.Exists("/zkcli"); ok {
		t.Errorf("/zkcli still exists after deleteall")
	}
}

func testZkCliArgs(t *testing.T, r *realZK, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	if _, err := c.Create("/zkcliargs", []byte("from-go"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	out := runZkCli(t, r, tg.Addr, "", "get", "/zkcliargs")
	expectInOrder(t, out, []string{`from-go`})
	out = runZkCli(t, r, tg.Addr, "", "create", "/zkcliargs/k", "from-cli")
	expectInOrder(t, out, []string{`Created /zkcliargs/k`})
	if d, _, err := c.Get("/zkcliargs/k"); err != nil || string(d) != "from-cli" {
		t.Errorf("node created by zkCli.sh: %q %v", d, err)
	}
}
