package agent

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// ParseResources reads Mesos' --resources syntax:
// "cpus:4;mem:4096;disk:10240;ports:[31000-32000]". Scalars are numbers,
// ranges are [a-b,c-d], sets are {a,b}.
func ParseResources(s string) ([]mesos.Resource, error) {
	var out mesos.Resources
	for _, item := range splitItems(s) {
		name, val, ok := strings.Cut(item, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("resource %q: want name:value", item)
		}
		val = strings.TrimSpace(val)
		var r mesos.Resource
		switch {
		case strings.HasPrefix(val, "["):
			ranges, err := parseRanges(val)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", name, err)
			}
			r = resources.Build().Name(resources.Name(name)).Ranges(ranges).Resource
		case strings.HasPrefix(val, "{"):
			items := strings.Split(strings.Trim(val, "{}"), ",")
			for i := range items {
				items[i] = strings.TrimSpace(items[i])
			}
			r = resources.Build().Name(resources.Name(name)).Set(items...).Resource
		default:
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || f < 0 {
				return nil, fmt.Errorf("resource %s: %q is not a non-negative number", name, val)
			}
			r = resources.Build().Name(resources.Name(name)).Scalar(f).Resource
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
		out = out.Plus(r)
	}
	return out, nil
}

// ParseOversubscribed reads a fixed revocable-resource estimate in the
// --resources syntax, e.g. "cpus:3" (the resources parameter of Mesos'
// FixedResourceEstimator): scalar resources only, each marked revocable.
func ParseOversubscribed(s string) ([]mesos.Resource, error) {
	rs, err := ParseResources(s)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if rs[i].GetType() != mesos.SCALAR {
			return nil, fmt.Errorf("resource %s: oversubscribed resources must be scalars, e.g. cpus:3", rs[i].Name)
		}
		rs[i].Revocable = &mesos.Resource_RevocableInfo{}
	}
	return rs, nil
}

// ParseAttributes reads Mesos' --attributes syntax: "rack:r1;host:h1;zone:2".
// Numbers become scalars, everything else text.
func ParseAttributes(s string) ([]mesos.Attribute, error) {
	var out []mesos.Attribute
	for _, item := range splitItems(s) {
		name, val, ok := strings.Cut(item, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("attribute %q: want name:value", item)
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out = append(out, mesos.Attribute{Name: name, Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: f}})
			continue
		}
		out = append(out, mesos.Attribute{Name: name, Type: mesos.TEXT, Text: &mesos.Value_Text{Value: val}})
	}
	return out, nil
}

func splitItems(s string) []string {
	var out []string
	for _, it := range strings.Split(s, ";") {
		if strings.TrimSpace(it) != "" {
			out = append(out, it)
		}
	}
	return out
}

func parseRanges(s string) (mesos.Ranges, error) {
	if !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("%q: missing ]", s)
	}
	var out mesos.Ranges
	for _, part := range strings.Split(strings.Trim(s, "[]"), ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(part), "-")
		b, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		e, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 64)
		if !ok || err1 != nil || err2 != nil || b > e {
			return nil, fmt.Errorf("%q: bad range %q", s, part)
		}
		out = append(out, mesos.Value_Range{Begin: b, End: e})
	}
	return out, nil
}

// DetectResources is what a Mesos agent offers when --resources is not
// given: every CPU, memory less 1 GB (or half, if smaller) for the system,
// the work dir's disk less 5 GB (or half), and ports 31000-32000.
func DetectResources(workDir string) []mesos.Resource {
	cpus := float64(runtime.NumCPU())
	var si syscall.Sysinfo_t
	memMB := 1024.0
	if syscall.Sysinfo(&si) == nil {
		total := float64(si.Totalram) * float64(si.Unit) / (1 << 20)
		memMB = total - min(1024, total/2)
	}
	diskMB := 10240.0
	var st syscall.Statfs_t
	if syscall.Statfs(workDir, &st) == nil {
		total := float64(st.Blocks) * float64(st.Bsize) / (1 << 20)
		diskMB = total - min(5120, total/2)
	}
	rs, _ := ParseResources(fmt.Sprintf("cpus:%g;mem:%.0f;disk:%.0f;ports:[31000-32000]", cpus, memMB, diskMB))
	return rs
}

// mergeResources returns base with every resource named in override
// replaced by override's.
func mergeResources(base, override []mesos.Resource) []mesos.Resource {
	named := map[string]bool{}
	for _, r := range override {
		named[r.Name] = true
	}
	var out []mesos.Resource
	for _, r := range base {
		if !named[r.Name] {
			out = append(out, r)
		}
	}
	return append(out, override...)
}
