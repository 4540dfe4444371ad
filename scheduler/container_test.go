package scheduler_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// TestContainersRefused: a container the scheduler cannot honour (tasks
// run on the host) is refused with INVALID_REQUEST by every RPC that takes
// a config, with Aurora 0.11's messages where it had them; without
// Config.AllowDockerParameters, Docker parameters are refused first with
// "Docker parameters not allowed.", as in 0.11. A Mesos container with
// neither image nor volumes is the host and stays accepted.
func TestContainersRefused(t *testing.T) {
	allowParams := false
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.AllowDockerParameters = allowParams })
	e.awaitOffer()
	withContainer := func(j api.JobConfiguration, c string) api.JobConfiguration {
		j.TaskConfig.Container = json.RawMessage(c)
		return j
	}
	const (
		docker       = `{"docker": {"image": "busybox", "parameters": []}}`
		dockerParams = `{"docker": {"image": "busybox", "parameters": [{"name": "volume", "value": "/tmp:/tmp"}]}}`
		mesosImage   = `{"mesos": {"image": {"docker": {"name": "busybox", "tag": "latest"}}, "volumes": []}}`
	)
	for _, c := range []struct {
		name, container, want string
	}{
		{"docker", docker, "The container type DOCKER is not allowed: this scheduler runs tasks on the host and has no image support (docker image \"busybox\")."},
		{"docker without image", `{"docker": {"image": ""}}`, "A container must specify an image"},
		{"docker parameters", dockerParams, "Docker parameters not allowed."},
		{"mesos docker image", mesosImage, "Container images are not supported: this scheduler runs tasks on the host and cannot run the mesos container's image docker busybox:latest."},
		{"mesos appc image", `{"mesos": {"image": {"appc": {"name": "hello", "imageId": "sha512-abc"}}}}`, "cannot run the mesos container's image appc hello (sha512-abc)."},
		{"mesos volumes", `{"mesos": {"volumes": [{"containerPath": "data", "hostPath": "/srv", "mode": "RO"}]}}`, "Container volumes are not supported: this scheduler runs tasks on the host and cannot mount the mesos container's 1 volume(s)."},
		{"unknown type", `{"rkt": {}}`, "Unknown container type rkt: want docker or mesos."},
		{"not an object", `"docker"`, "Invalid container: "},
	} {
		j := withContainer(jobConfig("boxed", 1, true, 1, "sleep 600"), c.container)
		r := e.rpc("createJob", map[string]any{"description": j})
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("createJob with %s: %s %q, want INVALID_REQUEST with %q", c.name, r.ResponseCode, details(r), c.want)
		}
	}

	// Every path that takes a config checks it.
	job := withContainer(jobConfig("boxed", 1, true, 1, "sleep 600"), docker)
	cron := withContainer(cronJob("boxcron", "*/5 * * * *", "", "sleep 600"), mesosImage)
	for _, c := range []struct {
		method string
		params map[string]any
		want   string
	}{
		{"populateJobConfig", map[string]any{"description": job}, "The container type DOCKER is not allowed"},
		{"startJobUpdate", updateRequest(job, api.JobUpdateSettings{UpdateGroupSize: 1}), "The container type DOCKER is not allowed"},
		{"scheduleCronJob", map[string]any{"description": cron}, "Container images are not supported"},
		{"replaceCronTemplate", map[string]any{"config": cron}, "Container images are not supported"},
	} {
		r := e.rpc(c.method, c.params)
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("%s: %s %q, want INVALID_REQUEST with %q", c.method, r.ResponseCode, details(r), c.want)
		}
	}
	if r := e.mustOK("getJobs", map[string]any{}); len(r.Result.GetJobsResult.Configs) != 0 {
		t.Fatalf("jobs after the refusals: %+v", r.Result.GetJobsResult.Configs)
	}
	if ts := e.tasks("boxed"); len(ts) != 0 {
		t.Fatalf("refused jobs left tasks: %v", summary(ts))
	}
	// A Mesos container without image or volumes is the host.
	e.mustOK("populateJobConfig", map[string]any{"description": withContainer(jobConfig("host", 1, true, 1, "true"), `{"mesos": {"volumes": []}}`)})

	// With the flag, parameters pass that check and the Docker type is
	// what is refused, as 0.11 with -allow_docker_parameters.
	e.stop()
	allowParams = true
	e.restart()
	e.awaitOffer()
	r := e.rpc("createJob", map[string]any{"description": withContainer(jobConfig("boxed", 1, true, 1, "sleep 600"), dockerParams)})
	if want := "The container type DOCKER is not allowed"; r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), want) {
		t.Errorf("createJob with Docker parameters allowed: %s %q, want INVALID_REQUEST with %q", r.ResponseCode, details(r), want)
	}
}
