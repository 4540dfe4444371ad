package ui

import (
	"net/http"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// CronSource is what the cron page reads; a Source that also implements
// it gets the page at /cronjobs (others answer 404 there).
type CronSource interface {
	// CronTimezone names the zone cron schedules are read in.
	CronTimezone() string
	// CronJobs lists the scheduled cron jobs, by key.
	CronJobs() []api.CronJob
}

type cronRow struct {
	Job, JobHref     string
	Schedule, Policy string
	Instances        int
	Next, LastFired  timeView
	Active           int
	LaunchPending    bool
}

type cronView struct {
	Timezone string
	Jobs     []cronRow
}

// cronJobs is /cronjobs: every cron job with its schedule, collision
// policy, next run and last firing.
func (h *handler) cronJobs() (*page, *httpError) {
	src, ok := h.src.(CronSource)
	if !ok {
		return nil, errorf(http.StatusNotFound, "This scheduler has no cron jobs page.")
	}
	v := cronView{Timezone: src.CronTimezone()}
	for _, j := range src.CronJobs() {
		v.Jobs = append(v.Jobs, cronRow{Job: j.Job.String(), JobHref: jobHref(j.Job), Schedule: j.CronSchedule,
			Policy: j.CronCollisionPolicy, Instances: j.InstanceCount, Next: h.at(j.NextRunMs), LastFired: h.at(j.LastFiredMs),
			Active: j.ActiveTasks, LaunchPending: j.LaunchPending})
	}
	return &page{Cluster: h.src.Cluster(), Kind: "cron", template: "cron", Heading: "Cron jobs",
		Crumbs: []crumb{{Label: h.src.Cluster(), Href: "/scheduler"}, {Label: "cron"}}, Data: v}, nil
}
