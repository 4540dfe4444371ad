//go:build e2e

package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkColdUp measures `aurorabox up --detach` on a fresh data dir until
// every component is ready, as a user sees it. It also reports the idle RSS
// of the supervisor and of each component, a second after start-up.
func BenchmarkColdUp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := newCluster(b)
		b.StartTimer()
		c.up()
		b.StopTimer()
		if i == b.N-1 {
			time.Sleep(time.Second)
			st := c.status()
			b.ReportMetric(rssKB(b, st.Supervisor.PID), "supervisor-rss-KB")
			for _, comp := range st.Components {
				b.ReportMetric(rssKB(b, comp.PID), comp.Name+"-rss-KB")
			}
		}
		c.run("down")
		b.StartTimer()
	}
}

func rssKB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// BenchmarkExecBaseline is the floor BenchmarkColdUp is compared with: one
// exec of the binary that does nothing (`aurorabox version`).
func BenchmarkExecBaseline(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if r := run(b, nil, "version"); r.code != 0 {
			b.Fatal(r.stderr)
		}
	}
}
