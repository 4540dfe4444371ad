package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// containerConfig is the TaskConfig's container union as the client sends
// it: {"docker": {...}} or {"mesos": {...}}.
type containerConfig struct {
	Docker *struct {
		Image      string            `json:"image"`
		Parameters []json.RawMessage `json:"parameters"`
	} `json:"docker"`
	Mesos *struct {
		Image   json.RawMessage   `json:"image"`
		Volumes []json.RawMessage `json:"volumes"`
	} `json:"mesos"`
}

// checkContainer refuses a container this scheduler cannot honour: the
// agent runs every task on the host, without images or volumes, so such a
// task would run silently somewhere else than its job asks. The checks and
// their order follow Aurora 0.11's ConfigurationManager, whose default
// -allowed_container_types is MESOS only: a Docker container without an
// image, then Docker parameters unless -allow_docker_parameters
// (Config.AllowDockerParameters), then the DOCKER type itself. A Mesos
// container may not name an image or volumes (0.11 had neither; later
// Aurora releases did). No container, or a Mesos one with neither, is the
// host, as in 0.11.
func (s *Scheduler) checkContainer(tc api.TaskConfig) error {
	raw := strings.TrimSpace(string(tc.Container))
	if raw == "" || raw == "null" {
		return nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(tc.Container, &keys); err != nil {
		return invalid("Invalid container: %v", err)
	}
	var unknown []string
	for k := range keys {
		if k != "docker" && k != "mesos" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return invalid("Unknown container type %s: want docker or mesos.", strings.Join(unknown, ", "))
	}
	var c containerConfig
	if err := json.Unmarshal(tc.Container, &c); err != nil {
		return invalid("Invalid container: %v", err)
	}
	switch {
	case c.Docker != nil && c.Mesos != nil:
		return invalid("A container must be either docker or mesos, not both.")
	case c.Docker != nil:
		if c.Docker.Image == "" {
			return invalid("A container must specify an image")
		}
		if len(c.Docker.Parameters) > 0 && !s.cfg.AllowDockerParameters {
			return invalid("Docker parameters not allowed.")
		}
		return invalid("The container type DOCKER is not allowed: this scheduler runs tasks on the host and has no image support (docker image %q).", c.Docker.Image)
	case c.Mesos != nil:
		if img := strings.TrimSpace(string(c.Mesos.Image)); img != "" && img != "null" {
			return invalid("Container images are not supported: this scheduler runs tasks on the host and cannot run the mesos container's image %s.", describeImage(c.Mesos.Image))
		}
		if len(c.Mesos.Volumes) > 0 {
			return invalid("Container volumes are not supported: this scheduler runs tasks on the host and cannot mount the mesos container's %d volume(s).", len(c.Mesos.Volumes))
		}
	}
	return nil
}

// describeImage names an image union ({"docker": {"name", "tag"}} or
// {"appc": {"name", "imageId"}}) for a message.
func describeImage(raw json.RawMessage) string {
	var img struct {
		Docker *struct{ Name, Tag string } `json:"docker"`
		Appc   *struct {
			Name    string
			ImageID string `json:"imageId"`
		} `json:"appc"`
	}
	if json.Unmarshal(raw, &img) != nil {
		return string(raw)
	}
	switch {
	case img.Docker != nil:
		return fmt.Sprintf("docker %s:%s", img.Docker.Name, img.Docker.Tag)
	case img.Appc != nil:
		return fmt.Sprintf("appc %s (%s)", img.Appc.Name, img.Appc.ImageID)
	}
	return string(raw)
}
