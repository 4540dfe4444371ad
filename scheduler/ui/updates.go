package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
	jobupdate "github.com/aurorabox/aurorabox/scheduler/update"
)

// The job update pages: /updates and /scheduler/<role>/<env>/<job>/update/<id>.

func updateHref(k api.JobUpdateKey) string { return jobHref(k.Job) + "/update/" + url.PathEscape(k.ID) }

// updateStatusClass is the CSS class of an update status: status-active
// (rolling), status-pending (paused or awaiting a pulse), status-finished
// (ROLLED_FORWARD), status-failed (the other ends).
func updateStatusClass(status string) string {
	st, err := jobupdate.ParseStatus(status)
	switch {
	case err != nil:
		return "status-unknown"
	case st.Rolling():
		return "status-active"
	case st.Active():
		return "status-pending"
	case st == jobupdate.RolledForward:
		return "status-finished"
	}
	return "status-failed"
}

// actionClass is the CSS class of an instance's latest action.
func actionClass(action string) string {
	switch action {
	case "INSTANCE_UPDATING", "INSTANCE_ROLLING_BACK":
		return "status-active"
	case "INSTANCE_UPDATED", "INSTANCE_ROLLED_BACK":
		return "status-finished"
	case "INSTANCE_UPDATE_FAILED", "INSTANCE_ROLLBACK_FAILED":
		return "status-failed"
	}
	return "status-pending"
}

// updateRow is an update in a list.
type updateRow struct {
	Job, JobHref      string
	ID, Href          string
	Status, Class     string
	User              string
	Started, Modified timeView
}

func (h *handler) updateRow(s api.JobUpdateSummary) updateRow {
	return updateRow{Job: s.Key.Job.String(), JobHref: jobHref(s.Key.Job), ID: s.Key.ID, Href: updateHref(s.Key),
		Status: s.State.Status, Class: updateStatusClass(s.State.Status), User: s.User,
		Started: h.at(s.State.CreatedTimestampMs), Modified: h.at(s.State.LastModifiedTimestampMs)}
}

type updatesView struct {
	Active, Finished []updateRow
	Error            string
}

// updates is /updates: the updates in progress, then the ended ones,
// newest first.
func (h *handler) updates() *page {
	var v updatesView
	sums, err := h.src.JobUpdateSummaries(api.JobUpdateQuery{})
	if err != nil {
		v.Error = err.Error()
	}
	for _, s := range sums {
		st, err := jobupdate.ParseStatus(s.State.Status)
		if err == nil && st.Active() {
			v.Active = append(v.Active, h.updateRow(s))
		} else {
			v.Finished = append(v.Finished, h.updateRow(s))
		}
	}
	return &page{Cluster: h.src.Cluster(), Kind: "updates", template: "updates", Heading: "Job updates",
		Crumbs: []crumb{{Label: h.src.Cluster(), Href: "/scheduler"}, {Label: "updates"}}, Data: v}
}

// instanceProgress is one instance of an update: what the update does to
// it and its latest action.
type instanceProgress struct {
	Instance     int
	InstanceHref string
	Change       string // add, update or remove
	Action       string // the latest JobUpdateAction, or PENDING
	Class        string
	Time         timeView
}

type configGroupView struct {
	Instances string
	Config    *configView
}

type settingView struct{ Name, Value string }

type updateEventView struct {
	Time          timeView
	Status, Class string
	User, Message string
}

type instanceEventView struct {
	Time          timeView
	Instance      int
	Action, Class string
}

type updateView struct {
	Summary                updateRow
	Metadata               []api.Metadata
	Settings               []settingView
	Desired                *configGroupView
	Initial                []configGroupView
	Instances              []instanceProgress
	Total, Done, Failed    int
	Events                 []updateEventView
	InstanceEvents         []instanceEventView
	DesiredNone, NoChanges bool
}

func rangesText(rs []api.Range) string {
	var parts []string
	for _, r := range rs {
		if r.First == r.Last {
			parts = append(parts, strconv.Itoa(r.First))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
	}
	return strings.Join(parts, ", ")
}

func settingsView(s api.JobUpdateSettings) []settingView {
	strategy := fmt.Sprintf("queue, group size %d", s.UpdateGroupSize)
	if s.WaitForBatchCompletion {
		strategy = fmt.Sprintf("batch, group size %d", s.UpdateGroupSize)
	}
	if us := s.UpdateStrategy; us != nil {
		switch {
		case us.QueueStrategy != nil:
			strategy = fmt.Sprintf("queue, group size %d", us.QueueStrategy.GroupSize)
		case us.BatchStrategy != nil:
			strategy = fmt.Sprintf("batch, group size %d", us.BatchStrategy.GroupSize)
			if us.BatchStrategy.AutopauseAfterBatch {
				strategy += ", pause after each batch"
			}
		case us.VarBatchStrategy != nil:
			var sizes []string
			for _, g := range us.VarBatchStrategy.GroupSizes {
				sizes = append(sizes, strconv.Itoa(g))
			}
			strategy = "variable batch, group sizes " + strings.Join(sizes, ", ")
			if us.VarBatchStrategy.AutopauseAfterBatch {
				strategy += ", pause after each batch"
			}
		}
	}
	out := []settingView{
		{"Strategy", strategy},
		{"Max failures per instance", strconv.Itoa(s.MaxPerInstanceFailures)},
		{"Max failed instances", strconv.Itoa(s.MaxFailedInstances)},
		{"Min time running", fmt.Sprintf("%d ms", s.MinWaitInInstanceRunningMs)},
		{"Rollback on failure", strconv.FormatBool(s.RollbackOnFailure)},
	}
	if len(s.UpdateOnlyTheseInstances) > 0 {
		out = append(out, settingView{"Only instances", rangesText(s.UpdateOnlyTheseInstances)})
	}
	if s.BlockIfNoPulsesAfterMs > 0 {
		out = append(out, settingView{"Block without a pulse after", fmt.Sprintf("%d ms", s.BlockIfNoPulsesAfterMs)})
	}
	if s.SlaAware {
		out = append(out, settingView{"SLA aware", "true"})
	}
	return out
}

// update is /scheduler/<role>/<env>/<job>/update/<id>.
func (h *handler) update(k api.JobKey, id string) (*page, *httpError) {
	d, ok := h.src.UpdateDetails(api.JobUpdateKey{Job: k, ID: id})
	if !ok {
		return nil, errorf(http.StatusNotFound, "Job %s has no update %q.", k, id)
	}
	in := d.Update.Instructions
	v := updateView{Summary: h.updateRow(d.Update.Summary), Metadata: d.Update.Summary.Metadata, Settings: settingsView(in.Settings)}
	// What the update does to each instance: compare the configurations.
	key := func(tc api.TaskConfig) string { b, _ := json.Marshal(tc); return string(b) }
	initial := map[int]string{}
	for _, g := range in.InitialState {
		v.Initial = append(v.Initial, configGroupView{Instances: rangesText(g.Instances), Config: configSummary(g.Task)})
		for _, r := range g.Instances {
			for i := r.First; i <= r.Last; i++ {
				initial[i] = key(g.Task)
			}
		}
	}
	change := map[int]string{}
	if ds := in.DesiredState; ds != nil {
		v.Desired = &configGroupView{Instances: rangesText(ds.Instances), Config: configSummary(ds.Task)}
		want := key(ds.Task)
		for _, r := range ds.Instances {
			for i := r.First; i <= r.Last; i++ {
				switch old, ok := initial[i]; {
				case !ok:
					change[i] = "add"
				case old != want:
					change[i] = "update"
				}
			}
		}
	} else {
		v.DesiredNone = true
	}
	for i := range initial {
		if _, kept := change[i]; !kept && !inRanges(in.DesiredState, i) {
			change[i] = "remove"
		}
	}
	latest := map[int]api.JobInstanceUpdateEvent{}
	for _, e := range d.InstanceEvents {
		latest[e.InstanceID] = e
		if _, ok := change[e.InstanceID]; !ok {
			change[e.InstanceID] = "update"
		}
	}
	for i, c := range change {
		p := instanceProgress{Instance: i, InstanceHref: instanceHref(k, i), Change: c, Action: "PENDING", Class: "status-pending"}
		if e, ok := latest[i]; ok {
			p.Action, p.Class, p.Time = e.Action, actionClass(e.Action), h.at(e.TimestampMs)
		}
		switch p.Action {
		case "INSTANCE_UPDATED", "INSTANCE_ROLLED_BACK":
			v.Done++
		case "INSTANCE_UPDATE_FAILED", "INSTANCE_ROLLBACK_FAILED":
			v.Failed++
		}
		v.Instances = append(v.Instances, p)
	}
	sort.Slice(v.Instances, func(a, b int) bool { return v.Instances[a].Instance < v.Instances[b].Instance })
	v.Total, v.NoChanges = len(v.Instances), len(v.Instances) == 0
	for _, e := range d.UpdateEvents {
		v.Events = append(v.Events, updateEventView{Time: h.at(e.TimestampMs), Status: e.Status, Class: updateStatusClass(e.Status),
			User: e.User, Message: e.Message})
	}
	for _, e := range d.InstanceEvents {
		v.InstanceEvents = append(v.InstanceEvents, instanceEventView{Time: h.at(e.TimestampMs), Instance: e.InstanceID,
			Action: e.Action, Class: actionClass(e.Action)})
	}
	return &page{Cluster: h.src.Cluster(), Kind: "update", template: "update", Heading: "Update " + id + " of " + k.String(),
		Crumbs: h.crumbs(k, crumb{Label: "update " + id}), Data: v}, nil
}

func inRanges(c *api.InstanceTaskConfig, i int) bool {
	if c == nil {
		return false
	}
	for _, r := range c.Instances {
		if i >= r.First && i <= r.Last {
			return true
		}
	}
	return false
}
