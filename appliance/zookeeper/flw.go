package zookeeper

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The four-letter words we answer. ZooKeeper 3.5+ only answers words on
// 4lw.commands.whitelist; aurorabox is a development server and answers
// all of these, like a real one configured with "*".
var fourLetterWords = map[string]bool{
	"ruok": true, "srvr": true, "stat": true, "mntr": true, "conf": true,
	"cons": true, "envi": true, "isro": true, "wchs": true, "dirs": true,
}

func isFourLetter(s string) bool { return fourLetterWords[s] }

// builtOn uses the date format of pre-3.5 builds, which go-zookeeper's
// FLWSrvr parser (and other old tools) expect.
const builtOn = "11/25/2026 00:00 GMT"

// fourLetter computes the answer to a four-letter word. It runs on the
// processor, so the figures are consistent.
func (p *processor) fourLetter(cmd string) []byte {
	var b strings.Builder
	switch cmd {
	case "ruok":
		return []byte("imok")
	case "isro":
		return []byte("rw")
	case "srvr":
		p.writeSrvr(&b)
	case "stat":
		fmt.Fprintf(&b, "Zookeeper version: %s, built on %s\nClients:\n", Version, builtOn)
		p.writeCons(&b, false)
		b.WriteString("\n")
		p.writeSrvr(&b)
		// Drop the duplicated version line.
		s := b.String()
		i := strings.Index(s, "\n\nZookeeper version: ")
		j := strings.Index(s[i+2:], "\n")
		return []byte(s[:i+2] + s[i+2+j+1:])
	case "cons":
		p.writeCons(&b, true)
		b.WriteString("\n")
	case "mntr":
		p.writeMntr(&b)
	case "conf":
		_, port, _ := strings.Cut(p.s.listenAddr(), ":")
		fmt.Fprintf(&b, "clientPort=%s\nsecureClientPort=-1\ndataDir=%s\ndataDirSize=%d\ndataLogDir=%s\ndataLogSize=%d\n",
			port, p.cfg.DataDir, dirSize(p.cfg.DataDir, snapPrefix), p.cfg.DataDir, dirSize(p.cfg.DataDir, logPrefix))
		fmt.Fprintf(&b, "tickTime=%d\nmaxClientCnxns=%d\nminSessionTimeout=%d\nmaxSessionTimeout=%d\nclientPortListenBacklog=-1\nserverId=0\n",
			p.cfg.TickTime.Milliseconds(), max(p.cfg.MaxClientConns, 0), p.cfg.MinSessionTimeout.Milliseconds(), p.cfg.MaxSessionTimeout.Milliseconds())
	case "envi":
		host, _ := os.Hostname()
		wd, _ := os.Getwd()
		fmt.Fprintf(&b, "Environment:\nzookeeper.version=%s, built on %s\nhost.name=%s\ngo.version=%s\nos.name=%s\nos.arch=%s\nuser.dir=%s\n",
			Version, builtOn, host, runtime.Version(), runtime.GOOS, runtime.GOARCH, wd)
	case "wchs":
		fmt.Fprintf(&b, "%d connections watching %d paths\nTotal watches:%d\n", p.watches.Watchers(), p.watches.Paths(), p.watches.Count())
	case "dirs":
		fmt.Fprintf(&b, "datadir_size: %d\nlogdir_size: %d\n", dirSize(p.cfg.DataDir, snapPrefix), dirSize(p.cfg.DataDir, logPrefix))
	}
	return []byte(b.String())
}

func (p *processor) latency() (minMs int64, avg float64, maxMs int64) {
	if p.latN == 0 {
		return 0, 0, 0
	}
	return p.latMin, float64(p.latSum) / float64(p.latN), p.latMax
}

func (p *processor) traffic() (recved, sent int64, conns int) {
	cs := p.s.connList()
	for _, c := range cs {
		recved += c.recved.Load()
		sent += c.sent.Load()
	}
	return recved + p.s.closedRecved.Load(), sent + p.s.closedSent.Load(), len(cs)
}

func (p *processor) writeSrvr(b *strings.Builder) {
	lmin, lavg, lmax := p.latency()
	recved, sent, conns := p.traffic()
	fmt.Fprintf(b, "Zookeeper version: %s, built on %s\n", Version, builtOn)
	fmt.Fprintf(b, "Latency min/avg/max: %d/%.4f/%d\n", lmin, lavg, lmax)
	fmt.Fprintf(b, "Received: %d\nSent: %d\nConnections: %d\nOutstanding: %d\n", recved, sent, conns, len(p.in))
	fmt.Fprintf(b, "Zxid: 0x%x\nMode: standalone\nNode count: %d\n", p.zxid, p.tree.NodeCount())
}

func (p *processor) writeCons(b *strings.Builder, detail bool) {
	cs := p.s.connList()
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	for _, c := range cs {
		fmt.Fprintf(b, " /%s[1](queued=%d,recved=%d,sent=%d", c.nc.RemoteAddr().String(), c.queued.Load(), c.recved.Load(), c.sent.Load())
		if detail && c.sess != nil {
			fmt.Fprintf(b, ",sid=0x%x,to=%d", c.sess.id, c.sess.timeout)
		}
		b.WriteString(")\n")
	}
}

func (p *processor) writeMntr(b *strings.Builder) {
	lmin, lavg, lmax := p.latency()
	recved, sent, conns := p.traffic()
	var rl unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	fds, _ := os.ReadDir("/proc/self/fd")
	kv := []struct {
		k string
		v any
	}{
		{"zk_version", Version + ", built on " + builtOn},
		{"zk_server_state", "standalone"},
		{"zk_avg_latency", strconv.FormatFloat(lavg, 'f', 4, 64)},
		{"zk_max_latency", lmax},
		{"zk_min_latency", lmin},
		{"zk_packets_received", recved},
		{"zk_packets_sent", sent},
		{"zk_num_alive_connections", conns},
		{"zk_outstanding_requests", len(p.in)},
		{"zk_znode_count", p.tree.NodeCount()},
		{"zk_watch_count", p.watches.Count()},
		{"zk_ephemerals_count", p.tree.EphemeralCount()},
		{"zk_approximate_data_size", p.tree.DataBytes()},
		{"zk_open_file_descriptor_count", len(fds)},
		{"zk_max_file_descriptor_count", rl.Cur},
		{"zk_global_sessions", len(p.sessions)},
		{"zk_last_zxid", fmt.Sprintf("0x%x", p.zxid)},
		{"zk_uptime", p.cfg.Now().Sub(p.s.started).Milliseconds()},
	}
	for _, e := range kv {
		fmt.Fprintf(b, "%s\t%v\n", e.k, e.v)
	}
}

func dirSize(dir, prefix string) int64 {
	files, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
