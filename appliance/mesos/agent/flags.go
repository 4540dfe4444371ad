package agent

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// flagsLocked is the agent's configuration as Mesos' agent flags, by name,
// with values as Mesos prints them: the flags of /flags, of /state and of
// the v1 API's GET_FLAGS. Where Mesos has a flag for a setting it has
// Mesos' name; settings of aurorabox's own (its `agent` command's flags
// with no Mesos counterpart) have that flag's name in Mesos' style. Called
// with a.mu held.
func (a *Agent) flagsLocked() map[string]string {
	var regular, revocable []mesos.Resource
	for _, r := range a.info.Resources {
		if r.Revocable != nil {
			revocable = append(revocable, r)
		} else {
			regular = append(regular, r)
		}
	}
	ip, port, _ := net.SplitHostPort(a.cfg.ListenAddr)
	f := map[string]string{
		"work_dir":                              a.cfg.WorkDir,
		"hostname":                              a.info.Hostname,
		"ip":                                    ip,
		"port":                                  port,
		"master":                                a.cfg.MasterURL,
		"resources":                             resourcesFlag(regular),
		"attributes":                            attributesFlag(a.info.Attributes),
		"isolation":                             isolationFlag(a.iso.Mode()),
		"cgroups_enable_cfs":                    strconv.FormatBool(a.cfg.EnableCFS),
		"authenticate_http_executors":           strconv.FormatBool(a.cfg.AuthenticateExecutors),
		"gc_delay":                              mesosDuration(a.cfg.GCDelay),
		"gc_disk_headroom":                      strconv.FormatFloat(a.cfg.GCDiskHeadroom, 'g', -1, 64),
		"disk_watch_interval":                   mesosDuration(a.cfg.DiskWatchInterval),
		"executor_shutdown_grace_period":        mesosDuration(a.cfg.ExecutorShutdownGrace),
		"executor_registration_timeout":         mesosDuration(a.cfg.ExecutorRegistrationTimeout),
		"recovery_timeout":                      mesosDuration(a.cfg.RecoveryTimeout),
		"recover":                               "reconnect",
		"switch_user":                           "true",
		"max_completed_executors_per_framework": strconv.Itoa(maxCompletedExecutors),
		// aurorabox's own.
		"pids_limit": strconv.FormatInt(a.cfg.PidsLimit, 10),
	}
	if len(revocable) > 0 {
		f["oversubscribed_resources"] = resourcesFlag(revocable)
	}
	if a.cfg.Name != "" {
		f["name"] = a.cfg.Name
	}
	return f
}

// flagList is flagsLocked as GET_FLAGS answers it, sorted by name.
func (a *Agent) flagList() []mesos.Flag {
	a.mu.Lock()
	f := a.flagsLocked()
	a.mu.Unlock()
	out := make([]mesos.Flag, 0, len(f))
	for name, v := range f {
		out = append(out, mesos.Flag{Name: name, Value: &v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// serveFlags is Mesos' /flags: {"flags": {name: value}}.
func (a *Agent) serveFlags(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	f := a.flagsLocked()
	a.mu.Unlock()
	mesosutil.WriteJSON(w, map[string]any{"flags": f})
}

// mesosDuration prints d as Mesos (stout) prints a duration flag: in the
// largest unit it is at least one of, e.g. "5secs", "1mins", "1weeks".
func mesosDuration(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{
		{7 * 24 * time.Hour, "weeks"}, {24 * time.Hour, "days"}, {time.Hour, "hrs"}, {time.Minute, "mins"},
		{time.Second, "secs"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"},
	}
	for _, u := range units {
		if d >= u.size {
			return strconv.FormatFloat(float64(d)/float64(u.size), 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// resourcesFlag prints resources in the --resources syntax that
// ParseResources reads: "cpus:2;mem:1024;ports:[31000-32000]".
func resourcesFlag(rs []mesos.Resource) string {
	var parts []string
	for _, r := range rs {
		var v string
		switch r.GetType() {
		case mesos.SCALAR:
			v = strconv.FormatFloat(r.GetScalar().GetValue(), 'f', -1, 64)
		case mesos.RANGES:
			var rg []string
			for _, x := range r.GetRanges().GetRange() {
				rg = append(rg, fmt.Sprintf("%d-%d", x.Begin, x.End))
			}
			v = "[" + strings.Join(rg, ",") + "]"
		case mesos.SET:
			v = "{" + strings.Join(r.GetSet().GetItem(), ",") + "}"
		}
		parts = append(parts, r.Name+":"+v)
	}
	return strings.Join(parts, ";")
}

// attributesFlag prints attributes in the --attributes syntax.
func attributesFlag(as []mesos.Attribute) string {
	var parts []string
	for _, at := range as {
		v := at.GetText().GetValue()
		if at.GetType() == mesos.SCALAR {
			v = strconv.FormatFloat(at.GetScalar().GetValue(), 'f', -1, 64)
		}
		parts = append(parts, at.Name+":"+v)
	}
	return strings.Join(parts, ";")
}
