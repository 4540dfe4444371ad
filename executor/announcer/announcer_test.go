package announcer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/serverset"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/go-zookeeper/zk"
)

var jobSeq atomic.Int64

// newPath is a fresh serverset path, so sequence numbers start at 0.
func newPath() string {
	return ServerSetPath("", "www-data", "devel", fmt.Sprintf("job%d", jobSeq.Add(1)))
}

func testMember(t *testing.T, shard int) []byte {
	t.Helper()
	primary, additional, err := Endpoints(schema.Announcer{},
		map[string]int{"http": 31000 + shard, "health": 32000 + shard}, "agent.test")
	if err != nil {
		t.Fatal(err)
	}
	return serverset.Marshal(serverset.Member{ServiceEndpoint: primary, AdditionalEndpoints: additional, Status: serverset.Alive, Shard: &shard})
}

func startAnnouncer(t *testing.T, addr, path string, shard int, mut func(*Config)) *Announcer {
	t.Helper()
	cfg := Config{
		Servers:        []string{addr},
		Path:           path,
		Member:         testMember(t, shard),
		SessionTimeout: 2 * time.Second,
		ConnectTimeout: waitTimeout,
		Logger:         testLogger(t),
	}
	if mut != nil {
		mut(&cfg)
	}
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(a.Stop)
	if a.Path() == "" {
		t.Fatal("Start returned without a member")
	}
	return a
}

// waitPath waits until the announcer reports want as its member.
func waitPath(t *testing.T, a *Announcer, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for a.Path() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Path() = %q, want %q", a.Path(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAnnouncer(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			addr := tg.start(t)
			t.Run("Registers", func(t *testing.T) { testRegisters(t, addr) })
			t.Run("ExternalDelete", func(t *testing.T) { testExternalDelete(t, tg.name, addr) })
			t.Run("SessionKilled", func(t *testing.T) { testSessionKilled(t, tg.name, addr) })
			t.Run("SessionExpiredByPartition", func(t *testing.T) { testPartition(t, tg.name, addr) })
			t.Run("Stop", func(t *testing.T) { testStop(t, addr) })
			t.Run("EphemeralParentFailsFast", func(t *testing.T) { testEphemeralParent(t, addr) })
			t.Run("DigestACL", func(t *testing.T) { testDigestACL(t, addr) })
			t.Run("ReclaimsStaleMemberOfOurEndpoint", func(t *testing.T) { testReclaim(t, addr) })
			t.Run("ReclaimsDeadMemberOfOurShard", func(t *testing.T) { testReclaimShard(t, addr) })
		})
	}
}

func testRegisters(t *testing.T, addr string) {
	obs := observe(t, addr)
	// An existing ancestor is left alone.
	if _, err := obs.Create("/aurora", nil, zk.FlagPersistent, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		t.Fatal(err)
	}
	path := newPath()
	a := startAnnouncer(t, addr, path, 0, nil)
	want := path + "/member_0000000000"
	if a.Path() != want {
		t.Errorf("Path() = %q, want %q", a.Path(), want)
	}
	if ms := members(t, obs, path); !slices.Equal(ms, []string{want}) {
		t.Fatalf("members %v, want [%s]", ms, want)
	}
	data, stat, err := obs.Get(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, testMember(t, 0)) {
		t.Errorf("member data %s, want %s", data, testMember(t, 0))
	}
	if stat.EphemeralOwner == 0 || stat.EphemeralOwner == obs.SessionID() {
		t.Errorf("ephemeralOwner %#x: not the announcer's session", stat.EphemeralOwner)
	}
	m, err := serverset.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ServiceEndpoint != (serverset.Endpoint{Host: "agent.test", Port: 31000}) || m.Status != "ALIVE" || m.Shard == nil || *m.Shard != 0 ||
		m.AdditionalEndpoints["aurora"] != (serverset.Endpoint{Host: "agent.test", Port: 31000}) ||
		m.AdditionalEndpoints["health"] != (serverset.Endpoint{Host: "agent.test", Port: 32000}) {
		t.Errorf("member %+v", m)
	}
	t.Logf("member %s: %s", want, data)

	// The serverset path and its ancestors are persistent, world-open.
	for _, p := range []string{"/aurora", "/aurora/www-data", "/aurora/www-data/devel", path} {
		_, st, err := obs.Get(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.EphemeralOwner != 0 {
			t.Errorf("%s is ephemeral", p)
		}
	}
	acl, _, err := obs.GetACL(path)
	if err != nil || !slices.Equal(acl, zk.WorldACL(zk.PermAll)) {
		t.Errorf("ACL of %s: %v %v", path, acl, err)
	}

	// A second instance of the job joins the same serverset.
	b := startAnnouncer(t, addr, path, 1, nil)
	if want := path + "/member_0000000001"; b.Path() != want {
		t.Errorf("second member %q, want %q", b.Path(), want)
	}
	if ms := members(t, obs, path); len(ms) != 2 {
		t.Errorf("members %v, want 2", ms)
	}
}

func testExternalDelete(t *testing.T, target, addr string) {
	obs := observe(t, addr)
	path := newPath()
	a := startAnnouncer(t, addr, path, 0, nil)
	var worst time.Duration
	for i := range 5 {
		old := a.Path()
		start := time.Now()
		if err := obs.Delete(old, -1); err != nil {
			t.Fatal(err)
		}
		ms := waitMembers(t, obs, path, waitTimeout, "re-registration after an external delete",
			func(ms []string) bool { return len(ms) == 1 && ms[0] != old })
		took := time.Since(start)
		worst = max(worst, took)
		t.Logf("%s: external delete of %s → %s visible after %v", target, old, ms[0], took.Round(time.Microsecond))
		if want := fmt.Sprintf("%s/member_%010d", path, i+1); ms[0] != want {
			t.Errorf("new member %s, want %s", ms[0], want)
		}
		waitPath(t, a, ms[0])
		if data, _, err := obs.Get(ms[0]); err != nil || !bytes.Equal(data, testMember(t, 0)) {
			t.Errorf("new member data %s (%v)", data, err)
		}
	}
	t.Logf("%s: RE-REGISTRATION external delete: worst %v of 5", target, worst.Round(time.Microsecond))
	if a.DisconnectedTime() != 0 {
		t.Errorf("DisconnectedTime %v while registered", a.DisconnectedTime())
	}
}

func testSessionKilled(t *testing.T, target, addr string) {
	obs := observe(t, addr)
	px := newProxy(t, addr)
	path := newPath()
	a := startAnnouncer(t, px.Addr(), path, 0, nil)
	old := a.Path()
	s := px.lastSession(t)
	_, st, err := obs.Exists(old)
	if err != nil || st.EphemeralOwner != s.id {
		t.Fatalf("member %s owner %#x (%v), proxy saw session %#x", old, st.EphemeralOwner, err, s.id)
	}

	// Keep the announcer from reattaching to its session while it is
	// being killed (it would take the session back and the kill would
	// fail); its reconnection waits in the proxy and goes through at once
	// afterwards.
	px.Hold()
	start := time.Now()
	killSession(t, addr, s)
	px.Release()
	ms := waitMembers(t, obs, path, waitTimeout, "re-registration after session expiry",
		func(ms []string) bool { return len(ms) == 1 && ms[0] != old })
	took := time.Since(start)
	t.Logf("%s: RE-REGISTRATION session killed (closeSession from a second connection): %s → %s after %v",
		target, old, ms[0], took.Round(time.Microsecond))
	waitPath(t, a, ms[0])
	_, st, err = obs.Exists(ms[0])
	if err != nil || st.EphemeralOwner == s.id || st.EphemeralOwner == 0 {
		t.Errorf("new member owner %#x (%v); the killed session was %#x", st.EphemeralOwner, err, s.id)
	}
	if s2 := px.lastSession(t); s2.id != st.EphemeralOwner {
		t.Errorf("new member owned by %#x, announcer's new session %#x", st.EphemeralOwner, s2.id)
	}
}

func testPartition(t *testing.T, target, addr string) {
	obs := observe(t, addr)
	px := newProxy(t, addr)
	path := newPath()
	const sessionTimeout = time.Second
	a := startAnnouncer(t, px.Addr(), path, 0, func(c *Config) { c.SessionTimeout = sessionTimeout })
	old := a.Path()

	start := time.Now()
	px.Pause()
	waitMembers(t, obs, path, waitTimeout, "session expiry during the partition",
		func(ms []string) bool { return len(ms) == 0 })
	expired := time.Since(start)
	resumed := time.Now()
	px.Resume()
	ms := waitMembers(t, obs, path, waitTimeout, "re-registration after the partition",
		func(ms []string) bool { return len(ms) == 1 && ms[0] != old })
	took := time.Since(resumed)
	t.Logf("%s: RE-REGISTRATION partition: session (timeout %v) expired %v after the cut; new member %s %v after the network came back",
		target, sessionTimeout, expired.Round(time.Millisecond), ms[0], took.Round(time.Microsecond))
	waitPath(t, a, ms[0])
}

func testStop(t *testing.T, addr string) {
	obs := observe(t, addr)
	path := newPath()
	a := startAnnouncer(t, addr, path, 0, nil)
	p := a.Path()
	ok, _, ech, err := obs.ExistsW(p)
	if err != nil || !ok {
		t.Fatalf("exists %s: %v %v", p, ok, err)
	}
	_, _, cch, err := obs.ChildrenW(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.Stop()
	t.Logf("Stop took %v", time.Since(start).Round(time.Microsecond))
	for _, w := range []struct {
		ch   <-chan zk.Event
		want zk.EventType
	}{{ech, zk.EventNodeDeleted}, {cch, zk.EventNodeChildrenChanged}} {
		select {
		case ev := <-w.ch:
			if ev.Type != w.want {
				t.Errorf("event %v, want %v", ev.Type, w.want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no %v after Stop", w.want)
		}
	}
	if ms := members(t, obs, path); len(ms) != 0 {
		t.Errorf("members after Stop: %v", ms)
	}
	if a.Path() != "" {
		t.Errorf("Path() = %q after Stop", a.Path())
	}
	start = time.Now()
	a.Stop() // idempotent
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second Stop took %v", d)
	}
	// No member comes back.
	time.Sleep(300 * time.Millisecond)
	if ms := members(t, obs, path); len(ms) != 0 {
		t.Errorf("members after Stop: %v", ms)
	}
}

func testEphemeralParent(t *testing.T, addr string) {
	obs := observe(t, addr)
	parent := fmt.Sprintf("/eph%d", jobSeq.Add(1))
	if _, err := obs.Create(parent, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Start(context.Background(), Config{
		Servers: []string{addr}, Path: parent + "/job", Member: testMember(t, 0),
		ConnectTimeout: waitTimeout, Logger: testLogger(t),
	})
	if !errors.Is(err, zk.ErrNoChildrenForEphemerals) {
		t.Fatalf("err = %v, want ErrNoChildrenForEphemerals", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to fail", d)
	}
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func testDigestACL(t *testing.T, addr string) {
	obs := observe(t, addr)
	path := newPath()
	acl := append(zk.DigestACL(zk.PermAll, "svc", "secret"), zk.WorldACL(zk.PermRead)...)
	a := startAnnouncer(t, addr, path, 0, func(c *Config) {
		c.Auth = []Credential{{Scheme: "digest", Credential: []byte("svc:secret")}}
		c.ACL = acl
	})
	// Apache ZooKeeper (since CVE-2019-0201) shows digests only to
	// clients with ADMIN permission; authenticate to read the ACL back.
	admin := observe(t, addr)
	if err := admin.AddAuth("digest", []byte("svc:secret")); err != nil {
		t.Fatal(err)
	}
	got, _, err := admin.GetACL(a.Path())
	if err != nil || !slices.Equal(got, acl) {
		t.Errorf("member ACL %v (%v), want %v", got, err, acl)
	}
	if _, err := obs.Set(a.Path(), []byte("x"), -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("unauthenticated set: %v, want ErrNoAuth", err)
	}
	if data, _, err := obs.Get(a.Path()); err != nil || !bytes.Equal(data, testMember(t, 0)) {
		t.Errorf("world-readable member: %s %v", data, err)
	}
}

// TestServerRestart restarts our server under the announcer: its session
// survives (the server keeps sessions in its log), so does the member.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	addr, stop := runOurs(t, "127.0.0.1:0", dir)
	path := newPath()
	a := startAnnouncer(t, addr, path, 0, nil)
	old := a.Path()
	stop()
	time.Sleep(200 * time.Millisecond)
	runOurs(t, addr, dir)
	obs := observe(t, addr)
	ms := waitMembers(t, obs, path, waitTimeout, "member after the restart",
		func(ms []string) bool { return len(ms) == 1 })
	waitPath(t, a, ms[0])
	t.Logf("member before the restart %s, after %s", old, ms[0])
	// Still watched: an external delete is still noticed.
	if err := obs.Delete(ms[0], -1); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, obs, path, waitTimeout, "re-registration after the restart",
		func(x []string) bool { return len(x) == 1 && x[0] != ms[0] })
}

func TestStartDeadAddressTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on
	testConnectTimeout(t, addr)
}

func TestStartSilentServerTimesOut(t *testing.T) {
	// Accepts connections and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	testConnectTimeout(t, ln.Addr().String())
}

func testConnectTimeout(t *testing.T, addr string) {
	const timeout = 700 * time.Millisecond
	start := time.Now()
	a, err := Start(context.Background(), Config{
		Servers: []string{addr}, Path: newPath(), Member: testMember(t, 0),
		ConnectTimeout: timeout, Logger: testLogger(t),
	})
	took := time.Since(start)
	if err == nil {
		a.Stop()
		t.Fatal("Start succeeded")
	}
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if took < timeout || took > timeout+300*time.Millisecond {
		t.Errorf("failed after %v, want ~%v", took, timeout)
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}

func TestStartHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Start(ctx, Config{Servers: []string{addr}, Path: newPath(), Member: testMember(t, 0),
		ConnectTimeout: waitTimeout, Logger: testLogger(t)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Path: "/aurora/a/b/c"},
		{Servers: []string{" , "}, Path: "/aurora/a/b/c"},
		{Servers: []string{"127.0.0.1:2181"}},
		{Servers: []string{"127.0.0.1:2181"}, Path: "  "},
	} {
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
	cfg, err := Config{Servers: []string{"a:1,b:2", "c:3"}, Path: "//aurora//x/"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Servers, []string{"a:1", "b:2", "c:3"}) || cfg.Path != "/aurora/x" ||
		cfg.SessionTimeout != DefaultSessionTimeout || cfg.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("defaults: %+v", cfg)
	}
}

// testReclaim: a member naming our endpoint, left by another session that
// is still alive (an executor killed before its session expired; here an
// open client), is deleted when we join, so the endpoint is announced
// once; a member of another endpoint is left alone.
func testReclaim(t *testing.T, addr string) {
	old := observe(t, addr)
	path := newPath()
	create := staleMembers(t, old, path)
	stale, other := create(testMember(t, 0)), create(testMember(t, 1))
	a := startAnnouncer(t, addr, path, 0, nil)
	if got, want := members(t, old, path), []string{other, a.Path()}; !slices.Equal(got, want) {
		t.Fatalf("members %v; want %v (the stale %s of our endpoint deleted)", got, want, stale)
	}
}

// testReclaimShard: a member of our shard on our host whose endpoint
// refuses connections (the instance's previous task, gone before its
// session expired) is deleted when we join; one of our shard that answers,
// and one of another shard, are left alone.
func testReclaimShard(t *testing.T, addr string) {
	old := observe(t, addr)
	path := newPath()
	// Every port is held until all are chosen, so that no two are the same
	// (a port just closed can be handed out again); the dead ones are
	// closed before the announcer looks.
	var deadLns []net.Listener
	port := func(live bool) int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		if !live {
			deadLns = append(deadLns, ln)
		}
		return ln.Addr().(*net.TCPAddr).Port
	}
	member := func(port, shard int) []byte {
		return serverset.Marshal(serverset.Member{ServiceEndpoint: serverset.Endpoint{Host: "127.0.0.1", Port: port}, Status: serverset.Alive, Shard: &shard})
	}
	create := staleMembers(t, old, path)
	dead := create(member(port(false), 0))
	live := create(member(port(true), 0))
	otherShard := create(member(port(false), 1))
	ours := member(port(true), 0)
	for _, ln := range deadLns {
		ln.Close()
	}
	a := startAnnouncer(t, addr, path, 0, func(c *Config) { c.Member = ours })
	if got, want := members(t, old, path), []string{live, otherShard, a.Path()}; !slices.Equal(got, want) {
		t.Fatalf("members %v; want %v (the dead %s of our shard deleted)", got, want, dead)
	}
}

// staleMembers makes path with old's session and returns a function that
// adds an ephemeral member with the given data under it, as another
// process's announcer would have, and returns its path.
func staleMembers(t *testing.T, old *zk.Conn, path string) func(data []byte) string {
	t.Helper()
	p := ""
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		p += "/" + part
		if _, err := old.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	return func(data []byte) string {
		t.Helper()
		m, err := old.Create(path+"/"+serverset.MemberPrefix, data, zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}
