package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/zktest"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/go-zookeeper/zk"
)

func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// The process elects itself, registers with Mesos (through a master found
// in ZooKeeper or given directly), serves the API, and advertises itself
// as a ServerSet member naming its host and port; when its context ends,
// Run returns nil and the member is gone.
func TestRunLeadsAndAdvertises(t *testing.T) {
	zkAddr := zktest.Start(t)
	c := mesostest.StartAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Config: scheduler.Config{DataDir: t.TempDir(), ExecutorPath: "/bin/true", User: "root",
				FrameworkCredential: &scheduler.FrameworkCredential{Principal: c.Principal, Secret: c.Secret}},
			Listener: ln, Hostname: "sched.local", MasterURL: c.MasterURL,
			ZooKeeper: zkAddr, ServersetPath: "/aurora/scheduler", Serve: serve,
		})
	}()
	conn, _, err := zk.Connect([]string{zkAddr}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	member := func() (serverset.Member, bool) {
		kids, _, err := conn.Children("/aurora/scheduler")
		if err != nil {
			return serverset.Member{}, false
		}
		for _, k := range kids {
			if strings.HasPrefix(k, "member_") {
				data, _, err := conn.Get("/aurora/scheduler/" + k)
				if err != nil {
					continue
				}
				m, err := serverset.Parse(data)
				return m, err == nil
			}
		}
		return serverset.Member{}, false
	}
	deadline := time.Now().Add(30 * time.Second)
	var m serverset.Member
	for {
		var ok bool
		if m, ok = member(); ok {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before advertising: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no ServerSet member after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m.ServiceEndpoint.Host != "sched.local" || port != strconv.Itoa(m.ServiceEndpoint.Port) || m.AdditionalEndpoints["http"] != m.ServiceEndpoint {
		t.Errorf("member %+v, want sched.local:%s", m, port)
	}
	resp, err := http.Post("http://"+ln.Addr().String()+"/api/getJobs", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("getJobs on the leader: %v %v", resp, err)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its context ended: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, ok := member(); ok {
		t.Error("the ServerSet member outlived the process's Run")
	}
}
