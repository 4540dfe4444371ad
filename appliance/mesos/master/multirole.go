package master

import (
	"fmt"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// offerRole is the one role a framework is allocated in (by the DRF
// allocator) and its offers are allocated to: a
// MULTI_ROLE-capable framework's first role, another framework's role, and
// Mesos' default role "*" for one that names none.
func offerRole(fi mesos.FrameworkInfo) string {
	if hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		if len(fi.Roles) > 0 && fi.Roles[0] != "" {
			return fi.Roles[0]
		}
		return "*"
	}
	if r := fi.GetRole(); r != "" {
		return r
	}
	return "*"
}

// offerAllocation is the allocation_info of a framework's offers and of
// each offered resource: set for MULTI_ROLE-capable frameworks, which
// match resources by it (mesos-go's Resource.Contains compares it, so an
// offer without it never contains what such a framework wants), and nil
// for the others, which predate it, as Mesos offers them.
func offerAllocation(fi mesos.FrameworkInfo) *mesos.Resource_AllocationInfo {
	if !hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		return nil
	}
	return &mesos.Resource_AllocationInfo{Role: proto.String(offerRole(fi))}
}

// allocated is res (a copy) allocated as alloc says.
func allocated(res mesos.Resources, alloc *mesos.Resource_AllocationInfo) mesos.Resources {
	out := res.Clone()
	if alloc == nil {
		return out
	}
	for i := range out {
		out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(alloc.GetRole())}
	}
	return out
}

// unallocated is res (a copy) without allocation_info, which the master
// does not account by: a resource may carry only the allocation the offer
// had (alloc; none for a framework that is not MULTI_ROLE-capable).
func unallocated(res []mesos.Resource, alloc *mesos.Resource_AllocationInfo) ([]mesos.Resource, error) {
	out := make([]mesos.Resource, 0, len(res))
	for _, r := range res {
		if a := r.AllocationInfo; a != nil {
			if alloc == nil {
				return nil, fmt.Errorf("resource %s has an allocation_info, which only a MULTI_ROLE framework's offers carry", r.Name)
			}
			if a.GetRole() != alloc.GetRole() {
				return nil, fmt.Errorf("resource %s is allocated to role %q, the offer to %q", r.Name, a.GetRole(), alloc.GetRole())
			}
			r = *proto.Clone(&r).(*mesos.Resource)
			r.AllocationInfo = nil
		}
		out = append(out, r)
	}
	return out, nil
}

// unallocateTask takes the allocation_info off a task's and its executor's
// resources (the executor is copied: a task group's tasks share one).
func unallocateTask(t *mesos.TaskInfo, alloc *mesos.Resource_AllocationInfo) error {
	res, err := unallocated(t.Resources, alloc)
	if err != nil {
		return err
	}
	t.Resources = res
	if t.Executor != nil {
		ex := *t.Executor
		if ex.Resources, err = unallocated(ex.Resources, alloc); err != nil {
			return fmt.Errorf("executor: %w", err)
		}
		t.Executor = &ex
	}
	return nil
}
