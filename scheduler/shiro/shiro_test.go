package shiro

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	users, err := Parse("shiro.ini", []byte("[main]\nx = y\n\n[users]\n# comment\nroot = secret, admin\nbob=pw\n[roles]\nadmin = *\n"))
	want := []User{{"root", "secret", []string{"admin"}}, {"bob", "pw", nil}}
	if err != nil || !reflect.DeepEqual(users, want) {
		t.Fatalf("users %+v, %v", users, err)
	}
	for _, c := range []struct{ in, want string }{
		{"[users]\nbroken line\n", "shiro.ini:2: want `name = password[, roles]`"},
		{"[users]\na = \n", "shiro.ini:2:"},
		{"[users]\na = x\na = y\n", `shiro.ini:3: user "a" is listed twice`},
		{"[roles]\nadmin = *\n", "shiro.ini: no users"},
		{"", "shiro.ini: no users"},
	} {
		if _, err := Parse("shiro.ini", []byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

// What Format writes, Parse and ReadFile read back.
func TestFormatRoundTrip(t *testing.T) {
	users := []User{{"aurora", "s3cr-t_", []string{"admin"}}, {"ro", "pw", nil}}
	b := Format([]string{"written by a test"}, users)
	if !strings.HasPrefix(string(b), "# written by a test\n[users]\naurora = s3cr-t_, admin\n") || !strings.Contains(string(b), "[roles]\nadmin = *\n") {
		t.Fatalf("format:\n%s", b)
	}
	p := filepath.Join(t.TempDir(), "shiro.ini")
	os.WriteFile(p, b, 0o600)
	got, err := ReadFile(p)
	if err != nil || !reflect.DeepEqual(got, users) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}
