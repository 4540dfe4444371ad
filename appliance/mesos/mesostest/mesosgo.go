package mesostest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MesosGoVersion is the mesos-go release whose example programs (msh, a
// framework that runs one command; mwatch, a client of the master's v1
// operator event stream) the tests run against our master and agent.
const MesosGoVersion = "v0.0.11"

// mesosGoPins are mesos-go's dependencies at the versions our go.mod uses
// (mesos-go v0.0.11 has no go.mod of its own to pin them).
var mesosGoPins = []string{
	"github.com/gogo/protobuf@v1.3.2",
	"github.com/pquerna/ffjson@v0.0.0-20190930134022-aa0246cd15f7",
}

// ErrMesosGoFetch is what BuildMesosGo's error wraps when mesos-go could
// not be downloaded (no network, and not in the module cache).
var ErrMesosGoFetch = errors.New("cannot fetch mesos-go " + MesosGoVersion)

// BuildMesosGo builds mesos-go's example programs (by name: "msh",
// "mwatch") into dir/bin, as a new user would: in a throwaway module of
// their own in dir (GOWORK=off, -mod=mod), so that they never become
// dependencies of ours. It returns each program's path by name.
func BuildMesosGo(dir string, programs ...string) (map[string]string, error) {
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	goCmd := func(args ...string) error {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := goCmd("mod", "init", "mesosgo.test/programs"); err != nil {
		return nil, err
	}
	if err := goCmd(append([]string{"get", "github.com/mesos/mesos-go@" + MesosGoVersion}, mesosGoPins...)...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMesosGoFetch, err)
	}
	bin := filepath.Join(dir, "bin")
	args := []string{"build", "-o", bin + "/"}
	out := map[string]string{}
	for _, p := range programs {
		args = append(args, "github.com/mesos/mesos-go/api/v1/cmd/"+p)
		out[p] = filepath.Join(bin, p)
	}
	if len(programs) == 1 {
		args[2] = out[programs[0]] // go build -o names the file for one package
	}
	if err := goCmd(args...); err != nil {
		// A build needs no more than the module graph just fetched, but a
		// package found missing is fetched here too.
		if strings.Contains(err.Error(), "dial tcp") || strings.Contains(err.Error(), "proxy.golang.org") {
			return nil, fmt.Errorf("%w: %w", ErrMesosGoFetch, err)
		}
		return nil, err
	}
	return out, nil
}
