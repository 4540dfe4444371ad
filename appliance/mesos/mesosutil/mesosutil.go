// Package mesosutil holds what the master and the agent both need to look
// like Mesos: terminal task states, resources rendered the way Mesos' state
// endpoints render them, JSON answers, UUIDs, and the JSON and protobuf
// codecs of the v1 HTTP APIs (codec.go).
package mesosutil

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// IsTerminal reports whether a task in state s will not change state again.
func IsTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// ResourcesJSON renders resources as Mesos' state endpoints do: scalars as
// numbers (summed per name), ranges as "[a-b, c-d]", sets as "{a, b}".
func ResourcesJSON(rs []mesos.Resource) map[string]any {
	out := map[string]any{"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
	ranges := map[string][]string{}
	for _, r := range rs {
		switch r.GetType() {
		case mesos.SCALAR:
			v, _ := out[r.Name].(float64)
			out[r.Name] = v + r.GetScalar().GetValue()
		case mesos.RANGES:
			for _, rg := range r.GetRanges().GetRange() {
				ranges[r.Name] = append(ranges[r.Name], fmt.Sprintf("%d-%d", rg.Begin, rg.End))
			}
		case mesos.SET:
			out[r.Name] = "{" + strings.Join(r.GetSet().GetItem(), ", ") + "}"
		}
	}
	for name, rg := range ranges {
		out[name] = "[" + strings.Join(rg, ", ") + "]"
	}
	return out
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// NewUUID returns a random (version 4) UUID in its text form.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// MesosAPIVersion is the Mesos release whose HTTP APIs the master and agent
// implement, reported where Mesos reports its own version (/version,
// /master/state, MasterInfo in ZooKeeper): the v1 scheduler and executor
// APIs of Mesos 1.0 with the partition awareness of 1.1 (PARTITION_AWARE,
// TASK_UNREACHABLE). Tools compare it as a release number, so it is one;
// aurorabox's own version goes in the build fields (see VersionJSON).
const MesosAPIVersion = "1.1.0"

// VersionJSON is Mesos' /version document (the keys of mesos-go's
// VersionInfo) for an aurorabox build: version is MesosAPIVersion, and the
// build fields name aurorabox, its version (git_tag) and its commit
// (git_sha, from the Go build info when the binary has it).
func VersionJSON(build string) map[string]any {
	sha := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				sha = s.Value
			}
		}
	}
	return map[string]any{
		"version": MesosAPIVersion, "build_user": "aurorabox", "build_date": "", "build_time": 0,
		"git_sha": sha, "git_branch": "", "git_tag": build,
	}
}
