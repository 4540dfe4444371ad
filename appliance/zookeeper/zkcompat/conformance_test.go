package zkcompat

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// knownDifferences lists, by name, every place where a target legitimately
// differs from what the suite otherwise requires. A check consults it with
// knownDifference; nothing is skipped silently.
var knownDifferences = map[string]string{
	"srvr/FLWSrvr-real": "go-zookeeper's FLWSrvr regexp expects the pre-3.5 version line " +
		"(\"built on MM/DD/YYYY HH:MM GMT\"); the Debian 3.8.0 build prints " +
		"\"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\", which it cannot parse. " +
		"Our server is not required to match either format; the suite parses srvr itself.",
	"raw/unknown-opcode/async-close-real": "Apache ZooKeeper answers an unknown opcode with " +
		"Unimplemented and queues the connection's close behind that reply " +
		"(UnimplementedRequestProcessor: sendResponse, then sendCloseSession), so a request that " +
		"arrives meanwhile may still be answered before the close; ours closes before it reads another request",
	"system-nodes": "real ZooKeeper has /zookeeper, /zookeeper/quota and /zookeeper/config; " +
		"our server may leave them out, so tests never list or count the root",
}

// knownDifference reports whether key is a listed difference that applies to
// this target, and logs it when it does.
func knownDifference(t testing.TB, tg *Target, key string) bool {
	t.Helper()
	desc, ok := knownDifferences[key+"-"+tg.Name]
	if !ok {
		desc, ok = knownDifferences[key]
	}
	if ok {
		t.Logf("KNOWN DIFFERENCE %s (%s): %s", key, tg.Name, desc)
	}
	return ok
}

type confCase struct {
	name string
	fn   func(t *testing.T, tg *Target)
}

var conformanceCases = []confCase{
	{"create/modes", testCreateModes},
	{"create/errors", testCreateErrors},
	{"create/create2", testCreate2},
	{"create/sequential-suffix", testSequentialSuffix},
	{"create/sequential-concurrent", testSequentialConcurrent},
	{"get-set-exists", testGetSetExists},
	{"delete", testDelete},
	{"children", testChildren},
	{"children/plain-getChildren", testPlainGetChildren},
	{"raw/unknown-opcode", testUnknownOpcode},
	{"session/wrong-password", testWrongPassword},
	{"stat", testStatSemantics},
	{"sync", testSync},
	{"multi/commit", testMultiCommit},
	{"multi/rollback", testMultiRollback},
	{"acl/world", testACLWorld},
	{"acl/digest", testACLDigest},
	{"acl/invalid", testACLInvalid},
	{"paths/invalid", testInvalidPaths},
	{"data/oversized", testOversizedData},
	{"watch/data", testWatchData},
	{"watch/exists", testWatchExists},
	{"watch/children", testWatchChildren},
	{"watch/one-shot", testWatchOneShot},
	{"watch/after-reconnect", testWatchAfterReconnect},
	{"session/timeout-negotiation", testSessionNegotiation},
	{"session/close-removes-ephemerals", testSessionClose},
	{"session/expiry", testSessionExpiry},
	{"4lw/ruok", test4lwRuok},
	{"4lw/srvr", test4lwSrvr},
	{"4lw/stat", test4lwStat},
	{"4lw/mntr", test4lwMntr},
	{"4lw/conf", test4lwConf},
	{"durability/restart", testRestart}, // last: it restarts the server
}

// TestConformance runs every case against real Apache ZooKeeper and against
// our server, one server per target for the whole test.
func TestConformance(t *testing.T) {
	for _, st := range targets() {
		t.Run(st.name, func(t *testing.T) {
			tg := st.start(t)
			for _, cc := range conformanceCases {
				t.Run(cc.name, func(t *testing.T) { cc.fn(t, tg) })
			}
		})
	}
}

// root creates a fresh persistent node for one case and returns its path.
func root(t *testing.T, c *zk.Conn) string {
	t.Helper()
	p := "/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	p = p[:1] + strings.TrimPrefix(p[1:], "TestConformance_")
	mustCreate(t, c, p, nil, 0)
	return p
}

// ---- create ----------------------------------------------------------------

func testCreateModes(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	if p := mustCreate(t, c, r+"/persistent", []byte("p"), 0); p != r+"/persistent" {
		t.Errorf("persistent create returned %q", p)
	}
	if st := mustStat(t, c, r+"/persistent"); st.EphemeralOwner != 0 {
		t.Errorf("persistent node has ephemeralOwner %#x", st.EphemeralOwner)
	}

	if p := mustCreate(t, c, r+"/ephemeral", []byte("e"), zk.FlagEphemeral); p != r+"/ephemeral" {
		t.Errorf("ephemeral create returned %q", p)
	}
	if st := mustStat(t, c, r+"/ephemeral"); st.EphemeralOwner != c.SessionID() {
		t.Errorf("ephemeral node: ephemeralOwner %#x, want session id %#x", st.EphemeralOwner, c.SessionID())
	}

	seqRe := regexp.MustCompile(`^` + regexp.QuoteMeta(r) + `/seq-(\d{10})$`)
	p := mustCreate(t, c, r+"/seq-", []byte("s"), zk.FlagSequence)
	if !seqRe.MatchString(p) {
		t.Errorf("sequential create returned %q, want %s/seq-<10 digits>", p, r)
	}
	if st := mustStat(t, c, p); st.EphemeralOwner != 0 {
		t.Errorf("sequential node has ephemeralOwner %#x", st.EphemeralOwner)
	}
	p2 := mustCreate(t, c, r+"/seq-", nil, zk.FlagEphemeral|zk.FlagSequence)
	if !seqRe.MatchString(p2) || p2 <= p {
		t.Errorf("ephemeral-sequential create returned %q after %q", p2, p)
	}
	if st := mustStat(t, c, p2); st.EphemeralOwner != c.SessionID() {
		t.Errorf("ephemeral-sequential: ephemeralOwner %#x, want %#x", st.EphemeralOwner, c.SessionID())
	}

	// Children of a persistent node may be anything; data round-trips.
	mustCreate(t, c, r+"/persistent/child", []byte{0, 1, 2, 0xff}, 0)
	if d, _, err := c.Get(r + "/persistent/child"); err != nil || !bytes.Equal(d, []byte{0, 1, 2, 0xff}) {
		t.Errorf("binary data round trip: %v %v", d, err)
	}
	// A sequential node may be created with a path ending in '/'.
	p3 := mustCreate(t, c, r+"/persistent/", nil, zk.FlagSequence)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(r) + `/persistent/\d{10}$`).MatchString(p3) {
		t.Errorf("sequential create of %q returned %q", r+"/persistent/", p3)
	}
}

func testCreateErrors(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	acl := zk.WorldACL(zk.PermAll)

	_, err := c.Create(r, nil, 0, acl)
	wantErr(t, "create existing node", err, zk.ErrNodeExists)
	_, err = c.Create(r+"/missing/child", nil, 0, acl)
	wantErr(t, "create under missing parent", err, zk.ErrNoNode)
	_, err = c.Create(r+"/missing/seq-", nil, zk.FlagSequence, acl)
	wantErr(t, "sequential create under missing parent", err, zk.ErrNoNode)

	mustCreate(t, c, r+"/eph", nil, zk.FlagEphemeral)
	_, err = c.Create(r+"/eph/child", nil, 0, acl)
	wantErr(t, "create child of ephemeral", err, zk.ErrNoChildrenForEphemerals)
	_, err = c.Create(r+"/eph/seq-", nil, zk.FlagSequence|zk.FlagEphemeral, acl)
	wantErr(t, "create sequential child of ephemeral", err, zk.ErrNoChildrenForEphemerals)

	_, err = c.Create(r+"/noacl", nil, 0, nil)
	wantErr(t, "create with empty ACL", err, zk.ErrInvalidACL)
	if ok, _, _ := c.Exists(r + "/noacl"); ok {
		t.Errorf("node created despite InvalidACL")
	}
	_, err = c.Create("/", nil, 0, acl)
	wantErr(t, "create /", err, zk.ErrNodeExists)
}

func testCreate2(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	rc, err := rawDial(tg.Addr, 10*time.Second)
	must(t, err)
	defer rc.Close()

	rep, err := rc.call(opCreate2, createBody(r+"/c2", []byte("hello"), zk.WorldACL(zk.PermAll), 0))
	must(t, err)
	if rep.Err != 0 {
		t.Fatalf("create2: error code %d", rep.Err)
	}
	jr := &juteR{b: rep.Body}
	path, st := jr.str(), jr.stat()
	must(t, jr.err)
	if path != r+"/c2" {
		t.Errorf("create2 path %q", path)
	}
	if st.DataLength != 5 || st.Version != 0 || st.Czxid != st.Mzxid || st.Czxid != st.Pzxid || st.Czxid != rep.Zxid {
		t.Errorf("create2 stat %s (reply zxid %#x)", fmtStat(&st), rep.Zxid)
	}
	if got := mustStat(t, c, r+"/c2"); *got != st {
		t.Errorf("create2 stat %s != exists stat %s", fmtStat(&st), fmtStat(got))
	}
	rep, err = rc.call(opCreate2, createBody(r+"/c2", nil, zk.WorldACL(zk.PermAll), 0))
	must(t, err)
	if rep.Err != -110 {
		t.Errorf("create2 existing: error code %d, want -110 (NodeExists)", rep.Err)
	}
	// An ephemeral-sequential create2 reports this session as owner.
	rep, err = rc.call(opCreate2, createBody(r+"/es-", nil, zk.WorldACL(zk.PermAll), 3))
	must(t, err)
	jr = &juteR{b: rep.Body}
	path, st = jr.str(), jr.stat()
	if rep.Err != 0 || path != r+"/es-0000000001" || st.EphemeralOwner != rc.SessionID {
		t.Errorf("create2 ephemeral-sequential: err %d path %q owner %#x (session %#x)", rep.Err, path, st.EphemeralOwner, rc.SessionID)
	}
}

func testSequentialSuffix(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	// Apache ZooKeeper keeps one counter per parent that only child creates
	// bump, and names a sequential child with that counter, %010d. The
	// cversion clients see is derived from it: 2*creates - numChildren, so
	// deletes raise the visible cversion but not the next sequence number.
	mustCreate(t, c, r+"/a", nil, 0) // creates 1, visible cversion 1
	mustCreate(t, c, r+"/b", nil, 0) // creates 2, visible cversion 2
	must(t, c.Delete(r+"/a", -1))    // creates 2, visible cversion 3
	if st := mustStat(t, c, r); st.Cversion != 3 || st.NumChildren != 1 {
		t.Errorf("after 2 creates and 1 delete: %s, want cversion 3, numChildren 1", fmtStat(st))
	}
	p := mustCreate(t, c, r+"/s-", nil, zk.FlagSequence)
	if want := r + "/s-0000000002"; p != want {
		t.Errorf("sequential after 2 creates + 1 delete: %q, want %q (deletes do not consume sequence numbers)", p, want)
	}
	p = mustCreate(t, c, r+"/x", nil, zk.FlagSequence|zk.FlagEphemeral) // no separator
	if want := r + "/x0000000003"; p != want {
		t.Errorf("ephemeral-sequential: %q, want %q", p, want)
	}
	// Setting data on the parent or a child changes neither counter.
	_, err := c.Set(r, []byte("x"), -1)
	must(t, err)
	_, err = c.Set(r+"/b", []byte("x"), -1)
	must(t, err)
	p = mustCreate(t, c, r+"/s-", nil, zk.FlagSequence)
	if want := r + "/s-0000000004"; p != want {
		t.Errorf("sequential after set: %q, want %q", p, want)
	}
	if st := mustStat(t, c, r); st.Cversion != 6 || st.NumChildren != 4 {
		t.Errorf("parent after 5 creates and 1 delete: %s, want cversion 6, numChildren 4", fmtStat(st))
	}
	// Failed creates (NodeExists) do not consume a number.
	_, err = c.Create(r+"/b", nil, 0, zk.WorldACL(zk.PermAll))
	wantErr(t, "create existing", err, zk.ErrNodeExists)
	p = mustCreate(t, c, r+"/s-", nil, zk.FlagSequence)
	if want := r + "/s-0000000005"; p != want {
		t.Errorf("sequential after failed create: %q, want %q", p, want)
	}
	// Removing every child does not reset the counter.
	kids, _, err := c.Children(r)
	must(t, err)
	for _, k := range kids {
		must(t, c.Delete(r+"/"+k, -1))
	}
	if st := mustStat(t, c, r); st.Cversion != 12 || st.NumChildren != 0 {
		t.Errorf("parent after 6 creates and 6 deletes: %s, want cversion 12", fmtStat(st))
	}
	p = mustCreate(t, c, r+"/s-", nil, zk.FlagSequence)
	if want := r + "/s-0000000006"; p != want {
		t.Errorf("sequential after deleting all children: %q, want %q", p, want)
	}
}

func testSequentialConcurrent(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	const clients, perClient = 16, 8
	conns := make([]*zk.Conn, clients)
	for i := range conns {
		conns[i], _ = connect(t, tg.Addr, 10*time.Second)
	}
	var (
		mu    sync.Mutex
		names []string
		wg    sync.WaitGroup
		errs  = make(chan error, clients*perClient)
	)
	for i := range conns {
		wg.Add(1)
		go func(cn *zk.Conn, i int) {
			defer wg.Done()
			for j := 0; j < perClient; j++ {
				flags := int32(zk.FlagSequence)
				if j%2 == 1 {
					flags |= zk.FlagEphemeral
				}
				p, err := cn.Create(r+"/n-", []byte(strconv.Itoa(i)), flags, zk.WorldACL(zk.PermAll))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				names = append(names, strings.TrimPrefix(p, r+"/"))
				mu.Unlock()
			}
		}(conns[i], i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent sequential create: %v", err)
	}
	sort.Strings(names)
	want := make([]string, clients*perClient)
	for i := range want {
		want[i] = fmt.Sprintf("n-%010d", i)
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("sequential names are not exactly n-0000000000..n-%010d:\n%v", len(want)-1, names)
	}
	kids, st, err := c.Children(r)
	must(t, err)
	sort.Strings(kids)
	if strings.Join(kids, ",") != strings.Join(want, ",") || st.NumChildren != int32(len(want)) || st.Cversion != int32(len(want)) {
		t.Errorf("children after concurrent creates: %d names, stat %s", len(kids), fmtStat(st))
	}
}

// ---- read / write ----------------------------------------------------------

func testGetSetExists(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	ok, st, err := c.Exists(r + "/nope")
	if err != nil || ok {
		t.Errorf("exists on missing node: %v %v", ok, err)
	}
	_ = st
	_, _, err = c.Get(r + "/nope")
	wantErr(t, "get missing", err, zk.ErrNoNode)
	_, err = c.Set(r+"/nope", []byte("x"), -1)
	wantErr(t, "set missing", err, zk.ErrNoNode)

	mustCreate(t, c, r+"/n", []byte("v0"), 0)
	d, st, err := c.Get(r + "/n")
	must(t, err)
	if string(d) != "v0" || st.Version != 0 || st.DataLength != 2 {
		t.Errorf("get: %q %s", d, fmtStat(st))
	}
	_, err = c.Set(r+"/n", []byte("v1"), 5)
	wantErr(t, "set with wrong version", err, zk.ErrBadVersion)
	st1, err := c.Set(r+"/n", []byte("v1"), 0)
	must(t, err)
	if st1.Version != 1 {
		t.Errorf("set with version 0: new version %d", st1.Version)
	}
	st2, err := c.Set(r+"/n", []byte("version-two"), -1)
	must(t, err)
	if st2.Version != 2 || st2.DataLength != 11 {
		t.Errorf("set with version -1: %s", fmtStat(st2))
	}
	d, st, err = c.Get(r + "/n")
	must(t, err)
	if string(d) != "version-two" || *st != *st2 {
		t.Errorf("get after set: %q %s, set returned %s", d, fmtStat(st), fmtStat(st2))
	}
	// Empty and nil data.
	st3, err := c.Set(r+"/n", nil, -1)
	must(t, err)
	d, _, err = c.Get(r + "/n")
	if err != nil || len(d) != 0 || st3.DataLength != 0 {
		t.Errorf("nil data: %q %v %s", d, err, fmtStat(st3))
	}
	// Large but legal data (1,000,000 bytes) round-trips.
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	_, err = c.Set(r+"/n", big, -1)
	must(t, err)
	d, st, err = c.Get(r + "/n")
	if err != nil || !bytes.Equal(d, big) || st.DataLength != int32(len(big)) {
		t.Errorf("1 MB data round trip: len %d err %v", len(d), err)
	}
	// The root exists and is readable.
	if ok, _, err := c.Exists("/"); !ok || err != nil {
		t.Errorf("exists /: %v %v", ok, err)
	}
	if _, _, err := c.Get("/"); err != nil {
		t.Errorf("get /: %v", err)
	}
}

func testDelete(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	wantErr(t, "delete missing", c.Delete(r+"/nope", -1), zk.ErrNoNode)
	mustCreate(t, c, r+"/n", nil, 0)
	_, err := c.Set(r+"/n", []byte("x"), -1) // version 1
	must(t, err)
	wantErr(t, "delete with wrong version", c.Delete(r+"/n", 0), zk.ErrBadVersion)
	must(t, c.Delete(r+"/n", 1))
	if ok, _, _ := c.Exists(r + "/n"); ok {
		t.Errorf("node exists after delete")
	}
	mustCreate(t, c, r+"/m", nil, 0)
	must(t, c.Delete(r+"/m", -1))

	mustCreate(t, c, r+"/p", nil, 0)
	mustCreate(t, c, r+"/p/c", nil, 0)
	wantErr(t, "delete non-empty", c.Delete(r+"/p", -1), zk.ErrNotEmpty)
	must(t, c.Delete(r+"/p/c", -1))
	must(t, c.Delete(r+"/p", -1))

	// Deleting the root is refused (BadArguments in Apache ZooKeeper 3.8).
	if err := c.Delete("/", -1); err == nil {
		t.Errorf("delete / succeeded")
	} else if !errors.Is(err, zk.ErrBadArguments) {
		t.Errorf("delete /: %v, want %v", err, zk.ErrBadArguments)
	}
}

func testChildren(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	_, _, err := c.Children(r + "/nope")
	wantErr(t, "children of missing node", err, zk.ErrNoNode)
	kids, st, err := c.Children(r)
	if err != nil || len(kids) != 0 || st.NumChildren != 0 {
		t.Errorf("children of empty node: %v %v %v", kids, fmtStat(st), err)
	}
	want := []string{"a", "b", "c", "zzz", "0000"}
	for _, k := range want {
		mustCreate(t, c, r+"/"+k, nil, 0)
	}
	mustCreate(t, c, r+"/a/grandchild", nil, 0)
	kids, st, err = c.Children(r)
	must(t, err)
	sort.Strings(kids)
	sort.Strings(want)
	if strings.Join(kids, ",") != strings.Join(want, ",") {
		t.Errorf("children %v, want %v (grandchildren must not be listed)", kids, want)
	}
	if st2 := mustStat(t, c, r); *st != *st2 {
		t.Errorf("getChildren2 stat %s != exists stat %s", fmtStat(st), fmtStat(st2))
	}
}

func testStatSemantics(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	before := time.Now().Add(-2 * time.Second).UnixMilli()
	mustCreate(t, c, r+"/n", []byte("abc"), 0)
	after := time.Now().Add(2 * time.Second).UnixMilli()
	n0 := mustStat(t, c, r+"/n")
	if n0.Czxid == 0 || n0.Czxid != n0.Mzxid || n0.Czxid != n0.Pzxid {
		t.Errorf("new node: czxid, mzxid and pzxid must be the create's zxid: %s", fmtStat(n0))
	}
	if n0.Version != 0 || n0.Cversion != 0 || n0.Aversion != 0 || n0.DataLength != 3 || n0.NumChildren != 0 || n0.EphemeralOwner != 0 {
		t.Errorf("new node counters: %s", fmtStat(n0))
	}
	if n0.Ctime != n0.Mtime || n0.Ctime < before || n0.Ctime > after {
		t.Errorf("new node ctime %d mtime %d, want equal and within [%d,%d]", n0.Ctime, n0.Mtime, before, after)
	}

	p0 := mustStat(t, c, r)
	if p0.Cversion != 1 || p0.NumChildren != 1 || p0.Pzxid != n0.Czxid {
		t.Errorf("parent after child create: %s, want cversion 1, numChildren 1, pzxid %#x", fmtStat(p0), n0.Czxid)
	}
	if p0.Mzxid != p0.Czxid || p0.Version != 0 {
		t.Errorf("parent data must not change on child create: %s", fmtStat(p0))
	}

	time.Sleep(5 * time.Millisecond) // let mtime move
	n1, err := c.Set(r+"/n", []byte("abcdef"), -1)
	must(t, err)
	if n1.Czxid != n0.Czxid || n1.Mzxid <= n0.Mzxid || n1.Pzxid != n0.Pzxid || n1.Version != 1 ||
		n1.DataLength != 6 || n1.Ctime != n0.Ctime || n1.Mtime < n0.Mtime || n1.Cversion != 0 {
		t.Errorf("after set: %s (before %s)", fmtStat(n1), fmtStat(n0))
	}
	if p1 := mustStat(t, c, r); *p1 != *p0 {
		t.Errorf("parent changed by child set: %s -> %s", fmtStat(p0), fmtStat(p1))
	}

	// Children of the node bump its cversion/pzxid/numChildren, not mzxid.
	mustCreate(t, c, r+"/n/k1", nil, 0)
	k1 := mustStat(t, c, r+"/n/k1")
	n2 := mustStat(t, c, r+"/n")
	if n2.Cversion != 1 || n2.NumChildren != 1 || n2.Pzxid != k1.Czxid || n2.Mzxid != n1.Mzxid || n2.Version != 1 {
		t.Errorf("after child create: %s (child %s)", fmtStat(n2), fmtStat(k1))
	}
	must(t, c.Delete(r+"/n/k1", -1))
	mustCreate(t, c, r+"/marker", nil, 0) // a later zxid to bound the delete's
	marker := mustStat(t, c, r+"/marker")
	n3 := mustStat(t, c, r+"/n")
	if n3.Cversion != 2 || n3.NumChildren != 0 || n3.Pzxid <= k1.Czxid || n3.Pzxid >= marker.Czxid || n3.Mzxid != n1.Mzxid {
		t.Errorf("after child delete: %s, want cversion 2, numChildren 0, %#x < pzxid < %#x", fmtStat(n3), k1.Czxid, marker.Czxid)
	}

	// setACL bumps aversion only.
	st, err := c.SetACL(r+"/n", zk.WorldACL(zk.PermAll), 0)
	must(t, err)
	if st.Aversion != 1 || st.Version != 1 || st.Cversion != 2 || st.Mzxid != n1.Mzxid {
		t.Errorf("after setACL: %s", fmtStat(st))
	}
	_, err = c.SetACL(r+"/n", zk.WorldACL(zk.PermAll), 0)
	wantErr(t, "setACL with stale aversion", err, zk.ErrBadVersion)

	// zxids grow with every write.
	a := mustStat(t, c, r+"/marker").Czxid
	mustCreate(t, c, r+"/m2", nil, 0)
	b := mustStat(t, c, r+"/m2").Czxid
	if b <= a {
		t.Errorf("zxid did not grow: %#x then %#x", a, b)
	}

	// ephemeralOwner of an ephemeral node is the creating session, for
	// every reader.
	mustCreate(t, c, r+"/eph", nil, zk.FlagEphemeral)
	c2, _ := connect(t, tg.Addr, 10*time.Second)
	if st := mustStat(t, c2, r+"/eph"); st.EphemeralOwner != c.SessionID() || st.EphemeralOwner == c2.SessionID() {
		t.Errorf("ephemeralOwner %#x seen from another session, want %#x", st.EphemeralOwner, c.SessionID())
	}
}

func testSync(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	p, err := c.Sync(r)
	if err != nil || p != r {
		t.Errorf("sync %s: %q %v", r, p, err)
	}
	p, err = c.Sync("/")
	if err != nil || p != "/" {
		t.Errorf("sync /: %q %v", p, err)
	}
	// A write from another session is visible after sync.
	c2, _ := connect(t, tg.Addr, 10*time.Second)
	mustCreate(t, c2, r+"/x", []byte("y"), 0)
	_, err = c.Sync(r + "/x")
	must(t, err)
	if d, _, err := c.Get(r + "/x"); err != nil || string(d) != "y" {
		t.Errorf("get after sync: %q %v", d, err)
	}
}

// ---- multi -----------------------------------------------------------------

func testMultiCommit(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/old", []byte("o"), 0)
	acl := zk.WorldACL(zk.PermAll)
	res, err := c.Multi(
		&zk.CreateRequest{Path: r + "/a", Data: []byte("a"), Acl: acl},
		&zk.CreateRequest{Path: r + "/s-", Acl: acl, Flags: zk.FlagSequence},
		&zk.SetDataRequest{Path: r + "/a", Data: []byte("a2"), Version: 0},
		&zk.CheckVersionRequest{Path: r + "/a", Version: 1},
		&zk.DeleteRequest{Path: r + "/old", Version: 0},
	)
	must(t, err)
	if len(res) != 5 {
		t.Fatalf("multi returned %d results", len(res))
	}
	for i, x := range res {
		if x.Error != nil {
			t.Errorf("multi op %d: %v", i, x.Error)
		}
	}
	if res[0].String != r+"/a" || res[1].String != r+"/s-0000000002" {
		t.Errorf("multi create paths %q %q", res[0].String, res[1].String)
	}
	if res[2].Stat == nil || res[2].Stat.Version != 1 || res[2].Stat.DataLength != 2 {
		t.Errorf("multi setData stat %s", fmtStat(res[2].Stat))
	}
	d, st, err := c.Get(r + "/a")
	if err != nil || string(d) != "a2" || st.Version != 1 {
		t.Errorf("after multi: %q %s %v", d, fmtStat(st), err)
	}
	if ok, _, _ := c.Exists(r + "/old"); ok {
		t.Errorf("multi delete did not apply")
	}
	// All ops of one multi share one zxid.
	a, s := mustStat(t, c, r+"/a"), mustStat(t, c, r+"/s-0000000002")
	if a.Czxid != s.Czxid || a.Mzxid != a.Czxid {
		t.Errorf("multi ops have different zxids: %s %s", fmtStat(a), fmtStat(s))
	}
	// An empty multi succeeds.
	if res, err := c.Multi(); err != nil || len(res) != 0 {
		t.Errorf("empty multi: %v %v", res, err)
	}
}

func testMultiRollback(t *testing.T, tg *Target) {
	c, log := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	acl := zk.WorldACL(zk.PermAll)
	mustCreate(t, c, r+"/keep", []byte("k"), 0)
	before := mustStat(t, c, r)
	_, _, w, err := c.GetW(r + "/keep")
	must(t, err)

	res, err := c.Multi(
		&zk.CreateRequest{Path: r + "/new", Data: []byte("n"), Acl: acl},
		&zk.SetDataRequest{Path: r + "/keep", Data: []byte("changed"), Version: -1},
		&zk.CheckVersionRequest{Path: r + "/keep", Version: 7}, // fails: version is 1 after the set
		&zk.DeleteRequest{Path: r + "/keep", Version: -1},
	)
	wantErr(t, "failing multi", err, zk.ErrBadVersion)
	if len(res) != 4 {
		t.Fatalf("failing multi returned %d results, want 4", len(res))
	}
	// Apache ZooKeeper reports OK (0) for the ops before the failure, the
	// failure's own code, and RuntimeInconsistency (-2) for the ops after it.
	codes := make([]string, len(res))
	for i, x := range res {
		codes[i] = fmt.Sprint(x.Error)
	}
	want := []string{"<nil>", "<nil>", zk.ErrBadVersion.Error(), "unknown error: -2"}
	if strings.Join(codes, "|") != strings.Join(want, "|") {
		t.Errorf("failing multi per-op results %q, want %q", codes, want)
	}
	if ok, _, _ := c.Exists(r + "/new"); ok {
		t.Errorf("create of a failed multi was applied")
	}
	if d, st, err := c.Get(r + "/keep"); err != nil || string(d) != "k" || st.Version != 0 {
		t.Errorf("set of a failed multi was applied: %q %s %v", d, fmtStat(st), err)
	}
	if after := mustStat(t, c, r); *after != *before {
		t.Errorf("parent stat changed by failed multi: %s -> %s", fmtStat(before), fmtStat(after))
	}
	// The failed multi fired no watch; the next real change does.
	_, err = c.Set(r+"/keep", []byte("x"), -1)
	must(t, err)
	waitWatch(t, w, zk.EventNodeDataChanged, r+"/keep")
	if n := len(log.nodeEvents(r + "/keep")); n != 1 {
		t.Errorf("%d events for %s, want exactly 1 (failed multi must not notify)", n, r+"/keep")
	}
	// Sequence numbers are not consumed by a failed multi.
	_, err = c.Multi(
		&zk.CreateRequest{Path: r + "/s-", Acl: acl, Flags: zk.FlagSequence},
		&zk.CreateRequest{Path: r + "/keep", Acl: acl},
	)
	wantErr(t, "multi with NodeExists", err, zk.ErrNodeExists)
	if p := mustCreate(t, c, r+"/s-", nil, zk.FlagSequence); p != r+"/s-0000000001" {
		t.Errorf("sequential after failed multi: %q, want %s/s-0000000001", p, r)
	}
}

// ---- ACLs ------------------------------------------------------------------

func testACLWorld(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	_, err := c.Create(r+"/ro", []byte("x"), 0, zk.WorldACL(zk.PermRead))
	must(t, err)
	acl, st, err := c.GetACL(r + "/ro")
	must(t, err)
	if len(acl) != 1 || acl[0] != (zk.ACL{Perms: zk.PermRead, Scheme: "world", ID: "anyone"}) || st.Aversion != 0 {
		t.Errorf("getACL: %+v %s", acl, fmtStat(st))
	}
	if _, _, err := c.Get(r + "/ro"); err != nil {
		t.Errorf("read with READ perm: %v", err)
	}
	_, err = c.Set(r+"/ro", []byte("y"), -1)
	wantErr(t, "write without WRITE perm", err, zk.ErrNoAuth)
	_, err = c.Create(r+"/ro/child", nil, 0, zk.WorldACL(zk.PermAll))
	wantErr(t, "create without CREATE perm", err, zk.ErrNoAuth)
	_, err = c.SetACL(r+"/ro", zk.WorldACL(zk.PermAll), -1)
	wantErr(t, "setACL without ADMIN perm", err, zk.ErrNoAuth)
	// Exists needs no permission; delete is checked on the parent.
	if ok, _, err := c.Exists(r + "/ro"); !ok || err != nil {
		t.Errorf("exists on READ-only node: %v %v", ok, err)
	}
	must(t, c.Delete(r+"/ro", -1))

	_, err = c.Create(r+"/nodel", nil, 0, zk.WorldACL(zk.PermAll&^zk.PermDelete))
	must(t, err)
	mustCreate(t, c, r+"/nodel/kid", nil, 0)
	wantErr(t, "delete child without DELETE perm on parent", c.Delete(r+"/nodel/kid", -1), zk.ErrNoAuth)

	_, err = c.Create(r+"/noread", []byte("secret"), 0, zk.WorldACL(zk.PermWrite))
	must(t, err)
	_, _, err = c.Get(r + "/noread")
	wantErr(t, "read without READ perm", err, zk.ErrNoAuth)
	_, _, err = c.Children(r + "/noread")
	wantErr(t, "children without READ perm", err, zk.ErrNoAuth)
	if _, err := c.Set(r+"/noread", []byte("w"), -1); err != nil {
		t.Errorf("write with WRITE perm: %v", err)
	}
}

func testACLDigest(t *testing.T, tg *Target) {
	owner, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, owner)
	must(t, owner.AddAuth("digest", []byte("alice:secret")))
	_, err := owner.Create(r+"/d", []byte("private"), 0, zk.DigestACL(zk.PermAll, "alice", "secret"))
	must(t, err)
	if d, _, err := owner.Get(r + "/d"); err != nil || string(d) != "private" {
		t.Errorf("owner read: %q %v", d, err)
	}

	anon, _ := connect(t, tg.Addr, 10*time.Second)
	_, _, err = anon.Get(r + "/d")
	wantErr(t, "read digest node without auth", err, zk.ErrNoAuth)
	_, err = anon.Set(r+"/d", []byte("x"), -1)
	wantErr(t, "write digest node without auth", err, zk.ErrNoAuth)
	if ok, _, err := anon.Exists(r + "/d"); !ok || err != nil {
		t.Errorf("exists needs no auth: %v %v", ok, err)
	}
	// Since ZooKeeper 3.6 (ZOOKEEPER-1392) getACL needs READ or ADMIN.
	_, _, err = anon.GetACL(r + "/d")
	wantErr(t, "getACL of digest node without auth", err, zk.ErrNoAuth)
	acl, _, err := owner.GetACL(r + "/d")
	if err != nil || len(acl) != 1 || acl[0] != zk.DigestACL(zk.PermAll, "alice", "secret")[0] {
		t.Errorf("owner getACL of digest node: %+v %v", acl, err)
	}

	// A wrong password authenticates as a different identity: still no access.
	must(t, anon.AddAuth("digest", []byte("alice:wrong")))
	_, _, err = anon.Get(r + "/d")
	wantErr(t, "read with wrong password", err, zk.ErrNoAuth)

	other, _ := connect(t, tg.Addr, 10*time.Second)
	must(t, other.AddAuth("digest", []byte("alice:secret")))
	if d, _, err := other.Get(r + "/d"); err != nil || string(d) != "private" {
		t.Errorf("second session with the same credentials: %q %v", d, err)
	}

	// The "auth" scheme expands to the session's authenticated identities.
	_, err = owner.Create(r+"/auth", nil, 0, zk.AuthACL(zk.PermAll))
	must(t, err)
	acl, _, err = owner.GetACL(r + "/auth")
	if err != nil || len(acl) != 1 || acl[0] != zk.DigestACL(zk.PermAll, "alice", "secret")[0] {
		t.Errorf("auth ACL stored as %+v (%v), want the digest identity", acl, err)
	}
	_, _, err = anon.Get(r + "/auth")
	wantErr(t, "read auth-ACL node from other identity", err, zk.ErrNoAuth)

	// World-readable, digest-writable.
	mixed := append(zk.WorldACL(zk.PermRead), zk.DigestACL(zk.PermAll, "alice", "secret")...)
	_, err = owner.Create(r+"/mixed", []byte("m"), 0, mixed)
	must(t, err)
	if _, _, err := anon.Get(r + "/mixed"); err != nil {
		t.Errorf("anonymous read of world-readable node: %v", err)
	}
	_, err = anon.Set(r+"/mixed", nil, -1)
	wantErr(t, "anonymous write of digest-writable node", err, zk.ErrNoAuth)
	if _, err := owner.Set(r+"/mixed", nil, -1); err != nil {
		t.Errorf("owner write of digest-writable node: %v", err)
	}
}

func testACLInvalid(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	cases := map[string][]zk.ACL{
		"empty":                 {},
		"auth without identity": zk.AuthACL(zk.PermAll),
		"unknown scheme":        {{Perms: zk.PermAll, Scheme: "bogus", ID: "x"}},
		"digest without hash":   {{Perms: zk.PermAll, Scheme: "digest", ID: "alice"}},
		"world not anyone":      {{Perms: zk.PermAll, Scheme: "world", ID: "someone"}},
	}
	i := 0
	for name, acl := range cases {
		i++
		p := fmt.Sprintf("%s/n%d", r, i)
		_, err := c.Create(p, nil, 0, acl)
		wantErr(t, "create with ACL "+name, err, zk.ErrInvalidACL)
	}
	mustCreate(t, c, r+"/x", nil, 0)
	_, err := c.SetACL(r+"/x", nil, -1)
	wantErr(t, "setACL with empty ACL", err, zk.ErrInvalidACL)
}

// ---- paths and sizes --------------------------------------------------------

// testInvalidPaths sends malformed paths with the raw client (go-zookeeper
// refuses them client-side). Expected codes are what Apache ZooKeeper 3.8
// answers: a create validates the path with PathUtils and answers
// BadArguments (-8), except that it looks up the parent first, so a path
// whose parent cannot exist (r+"//x") gets NoNode (-101). Reads just miss.
func testInvalidPaths(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/x", nil, 0)
	rc, err := rawDial(tg.Addr, 10*time.Second)
	must(t, err)
	defer rc.Close()
	const badArgs, noNode = -8, -101
	type pathCase struct {
		path    string
		want    int32 // Apache ZooKeeper's code
		seqWant int32 // code for the same path with the sequential flag
		alsoOK  int32 // another code accepted for ours, logged as a difference
	}
	cases := []pathCase{
		{"", badArgs, badArgs, 0},
		{"noslash", badArgs, badArgs, 0},
		{r + "/", badArgs, 0, 0}, // with the sequential flag "/r/" + counter is valid
		{r + "/.", badArgs, 0, 0},
		{r + "/..", badArgs, 0, 0},
		{r + "/x/.", badArgs, 0, 0},
		{r + "/x/..", badArgs, 0, 0},
		{r + "//x", noNode, noNode, badArgs},
		{r + "/./x", noNode, noNode, badArgs},
		{r + "/../x", noNode, noNode, badArgs},
		{r + "/x/./y", noNode, noNode, badArgs},
		{r + "/x//", noNode, noNode, badArgs},
		{r + "/nul\x00", badArgs, badArgs, 0},
		{r + "/ctl\x01", badArgs, badArgs, 0},
		{r + "/del\x7f", badArgs, badArgs, 0},
		{r + "/c1\u0080", badArgs, badArgs, 0},
		{r + "/priv\uf8ff", badArgs, badArgs, 0},
		{r + "/nonchar\ufffe", badArgs, badArgs, 0},
		{r + "/surrogate\xed\xa0\x80", badArgs, badArgs, 0},
		{r + "/badutf8\xff", badArgs, badArgs, 0},
	}
	check := func(what string, got, want, alsoOK int32) {
		t.Helper()
		switch {
		case got == want:
		case alsoOK != 0 && got == alsoOK:
			t.Logf("KNOWN DIFFERENCE paths/parent-first (%s): %s answered %d; Apache ZooKeeper answers %d because it looks up the parent before validating", tg.Name, what, got, want)
		default:
			t.Errorf("%s: error code %d, want %d", what, got, want)
		}
	}
	for _, pc := range cases {
		rep, err := rc.call(opCreate, createBody(pc.path, nil, zk.WorldACL(zk.PermAll), 0))
		if err != nil {
			t.Fatalf("create %q: %v", pc.path, err)
		}
		check(fmt.Sprintf("create %q", pc.path), rep.Err, pc.want, pc.alsoOK)
		rep, err = rc.call(opCreate, createBody(pc.path, nil, zk.WorldACL(zk.PermAll), zk.FlagSequence))
		if err != nil {
			t.Fatalf("sequential create %q: %v", pc.path, err)
		}
		check(fmt.Sprintf("sequential create %q", pc.path), rep.Err, pc.seqWant, pc.alsoOK)
		if pc.path == "" {
			continue // Apache ZooKeeper reads "" as the root; not worth copying
		}
		rep, err = rc.call(opGetData, pathBody(pc.path, false))
		if err != nil {
			t.Fatalf("getData %q: %v", pc.path, err)
		}
		check(fmt.Sprintf("getData %q", pc.path), rep.Err, noNode, badArgs)
	}
	// Names that look odd but are valid.
	for _, name := range []string{"...", ".x", "x.", "a b", "ünïcødé", "zookeeper", "\u00a0nbsp"} {
		rep, err := rc.call(opCreate, createBody(r+"/"+name, nil, zk.WorldACL(zk.PermAll), 0))
		if err != nil || rep.Err != 0 {
			t.Errorf("create valid name %q: %v %+v", name, err, rep)
		}
	}
	// The session survives all of that.
	rep, err := rc.call(opExists, pathBody(r, false))
	if err != nil || rep.Err != 0 {
		t.Errorf("session unusable after invalid paths: %v %+v", err, rep)
	}
	// sync does not check existence.
	rep, err = rc.call(9, (&juteW{}).str(r+"/missing").b)
	if err != nil || rep.Err != 0 {
		t.Errorf("sync of a missing path: %v %+v", err, rep)
	}
}

func testOversizedData(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/n", []byte("small"), 0)

	// A request larger than jute.maxbuffer (1 MB - 1) is refused: Apache
	// ZooKeeper drops the connection ("Len error") without applying it.
	for _, size := range []int{1 << 20, 1<<20 + 1, 2 << 20} {
		rc, err := rawDial(tg.Addr, 10*time.Second)
		must(t, err)
		rep, err := rc.call(opSetData, (&juteW{}).str(r+"/n").buf(make([]byte, size)).i32(-1).b)
		if err == nil && rep.Err == 0 {
			t.Errorf("setData with %d bytes succeeded", size)
		}
		if err == nil {
			t.Logf("setData with %d bytes: error code %d (connection kept)", size, rep.Err)
		}
		rc.c.Close()
		rc2, err := rawDial(tg.Addr, 10*time.Second)
		must(t, err)
		rep, err = rc2.call(opCreate, createBody(r+"/big", make([]byte, size), zk.WorldACL(zk.PermAll), 0))
		if err == nil && rep.Err == 0 {
			t.Errorf("create with %d bytes succeeded", size)
		}
		rc2.c.Close()
	}
	d, st, err := c.Get(r + "/n")
	if err != nil || string(d) != "small" || st.Version != 0 {
		t.Errorf("node changed by oversized requests: %q %s %v", d, fmtStat(st), err)
	}
	if ok, _, _ := c.Exists(r + "/big"); ok {
		t.Errorf("oversized create applied")
	}
	// The server keeps serving.
	if _, err := c.Set(r+"/n", []byte("fine"), -1); err != nil {
		t.Errorf("set after oversized requests: %v", err)
	}
}

// ---- watches ---------------------------------------------------------------

func testWatchData(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	other, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/n", nil, 0)

	_, _, w, err := c.GetW(r + "/n")
	must(t, err)
	_, err = other.Set(r+"/n", []byte("1"), -1)
	must(t, err)
	waitWatch(t, w, zk.EventNodeDataChanged, r+"/n")

	_, _, w, err = c.GetW(r + "/n")
	must(t, err)
	must(t, other.Delete(r+"/n", -1))
	waitWatch(t, w, zk.EventNodeDeleted, r+"/n")

	// getData on a missing node sets no watch (it fails with NoNode).
	_, _, _, err = c.GetW(r + "/n")
	wantErr(t, "getW on missing node", err, zk.ErrNoNode)
}

func testWatchExists(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	other, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)

	ok, _, w, err := c.ExistsW(r + "/n")
	if err != nil || ok {
		t.Fatalf("existsW on missing node: %v %v", ok, err)
	}
	mustCreate(t, other, r+"/n", nil, 0)
	waitWatch(t, w, zk.EventNodeCreated, r+"/n")

	_, _, w, err = c.ExistsW(r + "/n")
	must(t, err)
	_, err = other.Set(r+"/n", []byte("x"), -1)
	must(t, err)
	waitWatch(t, w, zk.EventNodeDataChanged, r+"/n")

	_, _, w, err = c.ExistsW(r + "/n")
	must(t, err)
	must(t, other.Delete(r+"/n", -1))
	waitWatch(t, w, zk.EventNodeDeleted, r+"/n")

	// An exists watch on a missing node also fires for an ephemeral create.
	_, _, w, err = c.ExistsW(r + "/e")
	must(t, err)
	mustCreate(t, other, r+"/e", nil, zk.FlagEphemeral)
	waitWatch(t, w, zk.EventNodeCreated, r+"/e")
}

func testWatchChildren(t *testing.T, tg *Target) {
	c, log := connect(t, tg.Addr, 10*time.Second)
	other, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/p", nil, 0)

	_, _, w, err := c.ChildrenW(r + "/p")
	must(t, err)
	mustCreate(t, other, r+"/p/a", nil, 0)
	waitWatch(t, w, zk.EventNodeChildrenChanged, r+"/p")

	_, _, w, err = c.ChildrenW(r + "/p")
	must(t, err)
	must(t, other.Delete(r+"/p/a", -1))
	waitWatch(t, w, zk.EventNodeChildrenChanged, r+"/p")

	// Data changes of the node or of a child, and grandchildren, do not
	// fire a child watch. The watcher's own writes order the check: a
	// notification would arrive before the reply to the write.
	mustCreate(t, c, r+"/p/b", nil, 0) // fires nothing: no watch set
	_, _, w, err = c.ChildrenW(r + "/p")
	must(t, err)
	_, err = c.Set(r+"/p", []byte("x"), -1)
	must(t, err)
	_, err = c.Set(r+"/p/b", []byte("x"), -1)
	must(t, err)
	mustCreate(t, c, r+"/p/b/grandchild", nil, 0)
	if n := len(log.nodeEvents(r + "/p")); n != 2 {
		t.Errorf("child watch fired on data/grandchild change: %d events for %s, want 2", n, r+"/p")
	}
	// Deleting the watched node fires NodeDeleted on its child watch.
	must(t, c.Delete(r+"/p/b/grandchild", -1))
	must(t, c.Delete(r+"/p/b", -1)) // fires NodeChildrenChanged
	waitWatch(t, w, zk.EventNodeChildrenChanged, r+"/p")
	_, _, w, err = c.ChildrenW(r + "/p")
	must(t, err)
	must(t, other.Delete(r+"/p", -1))
	waitWatch(t, w, zk.EventNodeDeleted, r+"/p")

	// Ephemeral children vanish with their session and fire child watches.
	mustCreate(t, c, r+"/q", nil, 0)
	third, _ := connect(t, tg.Addr, 10*time.Second)
	mustCreate(t, third, r+"/q/eph", nil, zk.FlagEphemeral)
	_, _, w, err = c.ChildrenW(r + "/q")
	must(t, err)
	third.Close()
	waitWatch(t, w, zk.EventNodeChildrenChanged, r+"/q")
}

func testWatchOneShot(t *testing.T, tg *Target) {
	c, log := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	n := r + "/n"
	mustCreate(t, c, n, nil, 0)

	// A data watch and an exists watch on the same node from one session:
	// the server delivers a single notification for one change.
	_, _, w1, err := c.GetW(n)
	must(t, err)
	_, _, w2, err := c.ExistsW(n)
	must(t, err)
	_, err = c.Set(n, []byte("1"), -1)
	must(t, err)
	waitWatch(t, w1, zk.EventNodeDataChanged, n)
	waitWatch(t, w2, zk.EventNodeDataChanged, n)
	if got := len(log.nodeEvents(n)); got != 1 {
		t.Errorf("%d notifications for one change with data+exists watches, want 1: %v", got, log.nodeEvents(n))
	}
	// Watches are one-shot: further changes by this session (whose replies
	// would follow any notification) send nothing more.
	_, err = c.Set(n, []byte("2"), -1)
	must(t, err)
	_, err = c.Set(n, []byte("3"), -1)
	must(t, err)
	must(t, c.Delete(n, -1))
	if got := len(log.nodeEvents(n)); got != 1 {
		t.Errorf("one-shot watch fired again: %v", log.nodeEvents(n))
	}
	// Setting the same watch twice still yields one notification.
	mustCreate(t, c, n, nil, 0)
	_, _, wa, err := c.GetW(n)
	must(t, err)
	_, _, wb, err := c.GetW(n)
	must(t, err)
	_, err = c.Set(n, []byte("4"), -1)
	must(t, err)
	waitWatch(t, wa, zk.EventNodeDataChanged, n)
	waitWatch(t, wb, zk.EventNodeDataChanged, n)
	if got := len(log.nodeEvents(n)); got != 2 {
		t.Errorf("duplicate data watch delivered %d notifications in total, want 2", got)
	}
}

func testWatchAfterReconnect(t *testing.T, tg *Target) {
	other, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, other)
	mustCreate(t, other, r+"/data", nil, 0)
	mustCreate(t, other, r+"/kids", nil, 0)
	mustCreate(t, other, r+"/stay", nil, 0)

	px := newProxy(t, tg.Addr)
	c, log := connect(t, px.Addr(), 4*time.Second)
	sid := c.SessionID()
	mustCreate(t, c, r+"/mine", nil, zk.FlagEphemeral)

	// Phase 1: watches set, connection lost, changes made while
	// disconnected. On reconnect the client sends setWatches with its last
	// zxid and the server must fire the missed events at once.
	_, _, wData, err := c.GetW(r + "/data")
	must(t, err)
	_, _, wKids, err := c.ChildrenW(r + "/kids")
	must(t, err)
	_, _, wNew, err := c.ExistsW(r + "/new")
	must(t, err)
	_, _, wGone, err := c.ExistsW(r + "/stay")
	must(t, err)

	px.Pause()
	if !log.waitState(waitTimeout, zk.StateDisconnected) {
		t.Fatalf("client did not notice the cut connection")
	}
	_, err = other.Set(r+"/data", []byte("changed"), -1)
	must(t, err)
	mustCreate(t, other, r+"/kids/k", nil, 0)
	mustCreate(t, other, r+"/new", nil, 0)
	must(t, other.Delete(r+"/stay", -1))
	px.Resume()

	waitWatch(t, wData, zk.EventNodeDataChanged, r+"/data")
	waitWatch(t, wKids, zk.EventNodeChildrenChanged, r+"/kids")
	waitWatch(t, wNew, zk.EventNodeCreated, r+"/new")
	waitWatch(t, wGone, zk.EventNodeDeleted, r+"/stay")
	if c.SessionID() != sid {
		t.Errorf("session changed across reconnect: %#x -> %#x", sid, c.SessionID())
	}
	if st := mustStat(t, other, r+"/mine"); st.EphemeralOwner != sid {
		t.Errorf("ephemeral lost across reconnect: %s", fmtStat(st))
	}

	// Phase 2: watches re-registered on reconnect keep working for later
	// changes.
	_, _, wData, err = c.GetW(r + "/data")
	must(t, err)
	px.Cut()
	if !log.waitFor(waitTimeout, func(evs []zk.Event) bool {
		n := 0
		for _, e := range evs {
			if e.Type == zk.EventSession && e.State == zk.StateHasSession {
				n++
			}
		}
		return n >= 3
	}) {
		t.Fatalf("client did not reconnect after the second cut")
	}
	_, err = other.Set(r+"/data", []byte("again"), -1)
	must(t, err)
	waitWatch(t, wData, zk.EventNodeDataChanged, r+"/data")
}

// ---- sessions --------------------------------------------------------------

func testSessionNegotiation(t *testing.T, tg *Target) {
	for _, tc := range []struct{ ask, want time.Duration }{
		{100 * time.Millisecond, minSessionTimeout},
		{3 * time.Second, 3 * time.Second},
		{10 * time.Minute, maxSessionTimeout},
	} {
		rc, err := rawDial(tg.Addr, tc.ask)
		must(t, err)
		if rc.SessionID == 0 {
			t.Errorf("no session id for timeout %v", tc.ask)
		}
		if got := time.Duration(rc.Timeout) * time.Millisecond; got != tc.want {
			t.Errorf("asked for %v session timeout, got %v, want %v", tc.ask, got, tc.want)
		}
		rc.Close()
	}
	// Two sessions never share an id.
	a, _ := connect(t, tg.Addr, 10*time.Second)
	b, _ := connect(t, tg.Addr, 10*time.Second)
	if a.SessionID() == b.SessionID() || a.SessionID() == 0 {
		t.Errorf("session ids %#x and %#x", a.SessionID(), b.SessionID())
	}
}

func testSessionClose(t *testing.T, tg *Target) {
	obs, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, obs)
	c, _ := connect(t, tg.Addr, 10*time.Second)
	mustCreate(t, c, r+"/e1", nil, zk.FlagEphemeral)
	seq := mustCreate(t, c, r+"/es-", nil, zk.FlagEphemeral|zk.FlagSequence)
	mustCreate(t, c, r+"/persist", nil, 0)
	_, _, w, err := obs.ExistsW(r + "/e1")
	must(t, err)
	_, _, wk, err := obs.ChildrenW(r)
	must(t, err)
	c.Close()
	waitWatch(t, w, zk.EventNodeDeleted, r+"/e1")
	waitWatch(t, wk, zk.EventNodeChildrenChanged, r)
	for _, p := range []string{r + "/e1", seq} {
		if ok, _, _ := obs.Exists(p); ok {
			t.Errorf("%s still exists after its session closed", p)
		}
	}
	if ok, _, _ := obs.Exists(r + "/persist"); !ok {
		t.Errorf("persistent node removed with its session")
	}
}

func testSessionExpiry(t *testing.T, tg *Target) {
	obs, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, obs)
	px := newProxy(t, tg.Addr)
	// 1 s session; the proxy keeps the client away until it expires.
	c, log := connect(t, px.Addr(), time.Second)
	sid := c.SessionID()
	mustCreate(t, c, r+"/eph", []byte("x"), zk.FlagEphemeral)
	_, _, cw, err := c.GetW(r + "/eph")
	must(t, err)
	_, _, w, err := obs.ExistsW(r + "/eph")
	must(t, err)
	_, _, wk, err := obs.ChildrenW(r)
	must(t, err)

	start := time.Now()
	px.Pause()
	waitWatch(t, w, zk.EventNodeDeleted, r+"/eph")
	waitWatch(t, wk, zk.EventNodeChildrenChanged, r)
	t.Logf("ephemeral removed %v after the client was cut off (session timeout 1s)", time.Since(start).Round(time.Millisecond))
	if ok, _, _ := obs.Exists(r + "/eph"); ok {
		t.Errorf("ephemeral still exists after expiry")
	}

	// The client learns of the expiry when it reconnects.
	px.Resume()
	if !log.waitState(waitTimeout, zk.StateExpired) {
		t.Errorf("client saw no StateExpired after reconnecting; events %v", log.all())
	}
	select {
	case e := <-cw:
		if e.Type != zk.EventNotWatching {
			t.Errorf("watch of the expired session: %v", e)
		}
	case <-time.After(waitTimeout):
		t.Errorf("watch of expired session not invalidated")
	}
	// go-zookeeper then opens a new session by itself.
	if !log.waitFor(waitTimeout, func([]zk.Event) bool { return c.SessionID() != 0 && c.SessionID() != sid }) {
		t.Errorf("no new session after expiry")
	}
}

// ---- four-letter words -----------------------------------------------------

func test4lwRuok(t *testing.T, tg *Target) {
	out, err := fourLetter(tg.Addr, "ruok", 5*time.Second)
	if err != nil || string(out) != "imok" {
		t.Errorf("ruok: %q %v", out, err)
	}
	if ok := zk.FLWRuok([]string{tg.Addr}, 5*time.Second); len(ok) != 1 || !ok[0] {
		t.Errorf("FLWRuok: %v", ok)
	}
}

// srvrRe matches the srvr/stat body of ZooKeeper 3.5+.
var srvrRe = regexp.MustCompile(`(?m)^Zookeeper version: (\S.*), built on (.+)\n` +
	`Latency min/avg/max: (\d+)/([0-9.]+)/(\d+)\n` +
	`Received: (\d+)\nSent: (\d+)\nConnections: (\d+)\nOutstanding: (\d+)\n` +
	`Zxid: (0x[0-9a-f]+)\nMode: (standalone|leader|follower|observer)\nNode count: (\d+)\n`)

func test4lwSrvr(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/x", nil, 0)
	last := mustStat(t, c, r+"/x").Czxid

	out, err := fourLetter(tg.Addr, "srvr", 5*time.Second)
	must(t, err)
	m := srvrRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("srvr output not in ZooKeeper's format:\n%s", out)
	}
	if !strings.HasPrefix(m[1], "3.") {
		t.Errorf("srvr version %q does not look like a ZooKeeper 3.x version", m[1])
	}
	if m[11] != "standalone" {
		t.Errorf("srvr mode %q, want standalone", m[11])
	}
	zxid, _ := strconv.ParseInt(m[10], 0, 64)
	if zxid < last {
		t.Errorf("srvr zxid %#x is older than a committed zxid %#x", zxid, last)
	}
	if conns, _ := strconv.Atoi(m[8]); conns < 1 {
		t.Errorf("srvr connections %d with a client connected", conns)
	}
	if n, _ := strconv.Atoi(m[12]); n < 3 {
		t.Errorf("srvr node count %d, want at least 3 (/, %s, %s/x)", n, r, r)
	}

	stats, ok := zk.FLWSrvr([]string{tg.Addr}, 5*time.Second)
	if !ok {
		var e error
		if len(stats) == 1 {
			e = stats[0].Error
		}
		if !knownDifference(t, tg, "srvr/FLWSrvr") {
			t.Errorf("zk.FLWSrvr cannot parse srvr: %v", e)
		}
	} else if stats[0].Mode != zk.ModeStandalone {
		t.Errorf("FLWSrvr mode %v", stats[0].Mode)
	}
}

func test4lwStat(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	_ = c
	out, err := fourLetter(tg.Addr, "stat", 5*time.Second)
	must(t, err)
	s := string(out)
	head, rest, ok := strings.Cut(s, "\nClients:\n")
	if !ok || !strings.HasPrefix(head, "Zookeeper version: ") {
		t.Fatalf("stat output lacks version/Clients sections:\n%s", s)
	}
	clients, tail, ok := strings.Cut(rest, "\n\n")
	if !ok || !srvrRe.MatchString(head+"\n"+tail) && !srvrRe.MatchString(strings.SplitN(s, "\n", 2)[0]+"\n"+tail) {
		t.Errorf("stat output: srvr fields missing after the client list:\n%s", s)
	}
	// One line per connection: " /127.0.0.1:port[1](queued=...,recved=...,sent=...)"
	lineRe := regexp.MustCompile(`^ /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)$`)
	n := 0
	for _, line := range strings.Split(clients, "\n") {
		if line == "" {
			continue
		}
		if !lineRe.MatchString(line) {
			t.Errorf("stat client line %q", line)
		}
		n++
	}
	if n < 2 { // our client and the stat connection itself
		t.Errorf("stat lists %d clients, want at least 2:\n%s", n, s)
	}
}

func test4lwMntr(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/e", nil, zk.FlagEphemeral)
	_, _, _, err := c.GetW(r)
	must(t, err)
	out, err := fourLetter(tg.Addr, "mntr", 5*time.Second)
	must(t, err)
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if !regexp.MustCompile(`^zk_\S+\t\S.*$`).MatchString(line) {
			t.Errorf("mntr line %q is not zk_<name><TAB><value>", line)
		}
	}
	kv := parseKV(out, "\t")
	if v := kv["zk_version"]; !strings.HasPrefix(v, "3.") {
		t.Errorf("zk_version %q", v)
	}
	if kv["zk_server_state"] != "standalone" {
		t.Errorf("zk_server_state %q", kv["zk_server_state"])
	}
	for _, k := range []string{"zk_avg_latency", "zk_max_latency", "zk_min_latency", "zk_packets_received",
		"zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests", "zk_znode_count",
		"zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size", "zk_open_file_descriptor_count",
		"zk_max_file_descriptor_count"} {
		v, ok := kv[k]
		if !ok {
			t.Errorf("mntr lacks %s", k)
			continue
		}
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("mntr %s=%q is not a number", k, v)
		}
	}
	num := func(k string) int { n, _ := strconv.Atoi(kv[k]); return n }
	if num("zk_ephemerals_count") < 1 || num("zk_watch_count") < 1 || num("zk_znode_count") < 3 || num("zk_num_alive_connections") < 1 {
		t.Errorf("mntr counts do not reflect an ephemeral, a watch and a connection: ephemerals=%s watches=%s znodes=%s conns=%s",
			kv["zk_ephemerals_count"], kv["zk_watch_count"], kv["zk_znode_count"], kv["zk_num_alive_connections"])
	}
}

func test4lwConf(t *testing.T, tg *Target) {
	out, err := fourLetter(tg.Addr, "conf", 5*time.Second)
	must(t, err)
	kv := parseKV(out, "=")
	_, port, _ := strings.Cut(tg.Addr, ":")
	if kv["clientPort"] != port {
		t.Errorf("conf clientPort=%q, want %s\n%s", kv["clientPort"], port, out)
	}
	if kv["tickTime"] != strconv.FormatInt(tickTime.Milliseconds(), 10) {
		t.Errorf("conf tickTime=%q, want %d", kv["tickTime"], tickTime.Milliseconds())
	}
	if kv["minSessionTimeout"] != strconv.FormatInt(minSessionTimeout.Milliseconds(), 10) ||
		kv["maxSessionTimeout"] != strconv.FormatInt(maxSessionTimeout.Milliseconds(), 10) {
		t.Errorf("conf session timeouts %q/%q", kv["minSessionTimeout"], kv["maxSessionTimeout"])
	}
	if kv["dataDir"] == "" {
		t.Errorf("conf lacks dataDir:\n%s", out)
	}
}

// ---- durability --------------------------------------------------------------

// testRestart kills the server and starts it again on the same data dir and
// address: committed data, Stat, sequence counters and zxid order survive,
// and so do live sessions (with their ephemerals) whose clients reconnect
// within the session timeout, as in Apache ZooKeeper.
func testRestart(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	owner, ownerLog := connect(t, tg.Addr, 30*time.Second)
	sid := owner.SessionID()
	mustCreate(t, c, r+"/p", []byte("v0"), 0)
	_, err := c.Set(r+"/p", []byte("v1"), 0)
	must(t, err)
	mustCreate(t, c, r+"/s-", nil, zk.FlagSequence)
	must(t, c.Delete(r+"/s-0000000001", -1))
	mustCreate(t, owner, r+"/eph", []byte("e"), zk.FlagEphemeral)
	_, err = c.Create(r+"/acl", []byte("a"), 0, zk.DigestACL(zk.PermAll, "u", "p"))
	must(t, err)
	beforeP := mustStat(t, c, r+"/p")
	beforeR := mustStat(t, c, r)

	tg.Restart(t)

	c2, _ := connect(t, tg.Addr, 10*time.Second)
	d, st, err := c2.Get(r + "/p")
	if err != nil || string(d) != "v1" || *st != *beforeP {
		t.Errorf("after restart %s/p = %q %s (%v), want \"v1\" %s", r, d, fmtStat(st), err, fmtStat(beforeP))
	}
	if st := mustStat(t, c2, r); *st != *beforeR {
		t.Errorf("after restart parent stat %s, want %s", fmtStat(st), fmtStat(beforeR))
	}
	if _, _, err := c2.Get(r + "/acl"); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("ACL not kept across restart: get without auth: %v", err)
	}
	if p := mustCreate(t, c2, r+"/s-", nil, zk.FlagSequence); p != r+"/s-0000000004" {
		t.Errorf("sequence counter after restart: %q, want %s/s-0000000004", p, r)
	}
	if after := mustStat(t, c2, r+"/s-0000000004"); after.Czxid <= beforeR.Pzxid {
		t.Errorf("zxid went backwards across restart: %#x after %#x", after.Czxid, beforeR.Pzxid)
	}
	// The ephemeral's owner reconnects with its session; the node stays.
	if !ownerLog.waitFor(waitTimeout, func(evs []zk.Event) bool {
		n := 0
		for _, e := range evs {
			if e.Type == zk.EventSession && e.State == zk.StateHasSession {
				n++
			}
		}
		return n >= 2
	}) {
		t.Fatalf("ephemeral owner did not reconnect after restart: %v", ownerLog.all())
	}
	if owner.SessionID() != sid {
		t.Errorf("session not kept across restart: %#x -> %#x", sid, owner.SessionID())
	}
	if st := mustStat(t, c2, r+"/eph"); st.EphemeralOwner != sid {
		t.Errorf("ephemeral after restart: %s, want owner %#x", fmtStat(st), sid)
	}
}

// testPlainGetChildren uses opcode 8 (getChildren without a Stat), which
// go-zookeeper never sends but zkCli's ls and older clients do.
func testPlainGetChildren(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	for _, n := range []string{"b", "a"} {
		mustCreate(t, c, r+"/"+n, nil, 0)
	}
	rc, err := rawDial(tg.Addr, 10*time.Second)
	must(t, err)
	defer rc.Close()
	rep, err := rc.call(opChildren, (&juteW{}).str(r).boolean(false).b)
	must(t, err)
	jr := &juteR{b: rep.Body}
	n := jr.i32()
	var kids []string
	for i := int32(0); i < n && jr.err == nil; i++ {
		kids = append(kids, jr.str())
	}
	must(t, jr.err)
	sort.Strings(kids)
	if rep.Err != 0 || strings.Join(kids, ",") != "a,b" || len(jr.b) != 0 {
		t.Fatalf("getChildren: err %d kids %v, %d bytes left", rep.Err, kids, len(jr.b))
	}
	rep, err = rc.call(opChildren, (&juteW{}).str(r+"/missing").boolean(false).b)
	must(t, err)
	if rep.Err != -101 {
		t.Errorf("getChildren of a missing node: %d, want -101 (NoNode)", rep.Err)
	}
}

// testUnknownOpcode sends a request type no ZooKeeper defines: an error
// reply, that connection closed, and the server goes on.
func testUnknownOpcode(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	rc, err := rawDial(tg.Addr, 10*time.Second)
	must(t, err)
	defer rc.c.Close()
	rep, err := rc.call(4242, (&juteW{}).str(r).b)
	// Apache ZooKeeper 3.8 answers Unimplemented (-6), then closes the
	// connection.
	if err != nil || rep.Err != -6 {
		t.Fatalf("unknown opcode: %v %+v, want error -6 (Unimplemented)", err, rep)
	}
	// A request sent after the error reply is not answered: the
	// connection is closed. Apache ZooKeeper closes it asynchronously (it
	// queues the close behind the reply), so it may still answer one that
	// arrives first; either way the server must then close the connection,
	// which awaitClose waits for, with a deadline, rather than probing once.
	_, err = rc.call(opExists, (&juteW{}).str(r).boolean(false).b)
	switch {
	case errors.Is(err, errConnClosedByServer):
	case err == nil && knownDifference(t, tg, "raw/unknown-opcode/async-close"):
		if err := rc.awaitClose(10 * time.Second); err != nil {
			t.Fatalf("the connection after an unknown opcode: %v, want it closed", err)
		}
	default:
		t.Fatalf("the connection after an unknown opcode: %v, want it closed", err)
	}
	mustCreate(t, c, r+"/after", nil, 0)
}

// testWrongPassword reconnects to a live session with a wrong password:
// the server must refuse (an expired-session answer: session id 0) and
// leave the real session alone.
func testWrongPassword(t *testing.T, tg *Target) {
	c, _ := connect(t, tg.Addr, 10*time.Second)
	r := root(t, c)
	mustCreate(t, c, r+"/e", nil, zk.FlagEphemeral)
	nc, err := net.DialTimeout("tcp", tg.Addr, 5*time.Second)
	must(t, err)
	defer nc.Close()
	rc := &rawConn{c: nc}
	req := (&juteW{}).i32(0).i64(0).i32(10000).i64(c.SessionID()).buf([]byte("0123456789abcdef")).boolean(false)
	must(t, rc.writeFrame(req.b))
	body, err := rc.readFrame()
	if err == nil {
		jr := &juteR{b: body}
		_, timeout, sid := jr.i32(), jr.i32(), jr.i64()
		if sid != 0 || timeout != 0 {
			t.Fatalf("wrong password accepted: session %#x timeout %d", sid, timeout)
		}
	}
	// Apache ZooKeeper drops the session's current connection before it
	// checks the password (go-zookeeper then reconnects); the session and
	// its ephemeral must survive either way.
	var ok bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok, _, err = c.Exists(r + "/e"); err == nil {
			break
		}
	}
	if err != nil || !ok {
		t.Fatalf("the real session lost its ephemeral: %v %v", ok, err)
	}
}
