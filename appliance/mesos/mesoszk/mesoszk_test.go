package mesoszk

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/aurorabox/aurorabox/appliance/zookeeper"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/zktest"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URL
		err  string
	}{
		{"zk://127.0.0.1:2181/mesos", URL{Servers: []string{"127.0.0.1:2181"}, Path: "/mesos"}, ""},
		{"zk://a:1,b:2,c/aurora/mesos/", URL{Servers: []string{"a:1", "b:2", "c:2181"}, Path: "/aurora/mesos"}, ""},
		{"zk://u:p%40ss@h:2181/mesos", URL{Servers: []string{"h:2181"}, Path: "/mesos", Auth: "u:p@ss"}, ""},
		{"http://h:5050", URL{}, "not a zk:// URL"},
		{"zk:///mesos", URL{}, "no ZooKeeper servers"},
		{"zk://h:2181", URL{}, "no znode path"},
	} {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// startZK runs a ZooKeeper server with a short tick, so that sessions
// expire quickly.
func startZK(t *testing.T) string {
	t.Helper()
	return zktest.Start(t, func(c *zookeeper.Config) { c.TickTime = 100 * time.Millisecond })
}

func masterInfo(port uint32) *mesos.MasterInfo {
	host := "127.0.0.1"
	return &mesos.MasterInfo{ID: "m1", IP: 16777343, Port: proto.Uint32(port), PID: proto.String(fmt.Sprintf("master@127.0.0.1:%d", port)),
		Hostname: &host, Version: proto.String("1.6.1"), Address: &mesos.Address{Hostname: &host, IP: &host, Port: int32(port)}}
}

// TestRegisterAndDetect registers two masters, checks the znodes with an
// independent go-zookeeper session, and that the first is the leader until
// it goes away.
func TestRegisterAndDetect(t *testing.T) {
	addr := startZK(t)
	u, err := ParseURL("zk://" + addr + "/nested/mesos")
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1, err := Register(ctx1, u, masterInfo(5050), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if _, err := Register(ctx2, u, masterInfo(5052), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	c, _, err := zk.Connect([]string{addr}, 5*time.Second, zklog.Option(nil, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kids, _, err := c.Children("/nested/mesos")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(kids, ",") != "json.info_0000000000,json.info_0000000001" && strings.Join(kids, ",") != "json.info_0000000001,json.info_0000000000" {
		t.Fatalf("children %v", kids)
	}
	data, st, err := c.Get("/nested/mesos/json.info_0000000000")
	if err != nil || st.EphemeralOwner == 0 {
		t.Fatalf("json.info_0000000000: %v owner %#x", err, st.EphemeralOwner)
	}
	// The JSON has Mesos' MasterInfo keys.
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "ip", "port", "pid", "hostname", "version", "address"} {
		if _, ok := m[k]; !ok {
			t.Errorf("MasterInfo JSON lacks %q: %s", k, data)
		}
	}
	if m["ip"].(float64) != 16777343 {
		t.Errorf("ip %v, want 16777343 (127.0.0.1 in network order)", m["ip"])
	}

	leader, err := Leader(c, "/nested/mesos")
	if err != nil || LeaderURL(leader) != "http://127.0.0.1:5050" {
		t.Fatalf("leader %v %v", leader, err)
	}
	cancel1()
	<-done1
	leader, err = Leader(c, "/nested/mesos")
	if err != nil || LeaderURL(leader) != "http://127.0.0.1:5052" {
		t.Fatalf("after the first master left: leader %v %v", leader, err)
	}
}
