package scheduler

import (
	"errors"
	"os/user"
	"testing"
)

// A role naming a user with uid 0 under another name runs as root too.
func TestRootRole(t *testing.T) {
	users := map[string]*user.User{
		"toor":     {Username: "toor", Uid: "0"},
		"www-data": {Username: "www-data", Uid: "33"},
	}
	lookup := func(name string) (*user.User, error) {
		if u, ok := users[name]; ok {
			return u, nil
		}
		return nil, user.UnknownUserError(name)
	}
	for role, want := range map[string]bool{"root": true, "toor": true, "www-data": false, "nosuchuser": false} {
		if _, got := rootRole(role, lookup); got != want {
			t.Errorf("rootRole(%q) = %v, want %v", role, got, want)
		}
	}
	// root is refused by name even where no user root exists.
	if _, got := rootRole("root", func(string) (*user.User, error) { return nil, errors.New("no passwd") }); !got {
		t.Error("root without a passwd entry was allowed")
	}
	s := &Scheduler{cfg: Config{AllowRootTasks: true}}
	if err := s.checkRole("root"); err != nil {
		t.Fatalf("AllowRootTasks: %v", err)
	}
}
