package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "shiro.ini")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	users, err := readUsers(write("[main]\nx = y\n\n[users]\n# comment\nroot = secret, admin\nbob=pw\n[roles]\nadmin = *\n"))
	if err != nil || len(users) != 2 || users["root"] != "secret" || users["bob"] != "pw" {
		t.Fatalf("users %v, %v", users, err)
	}
	if _, err := readUsers(write("[users]\nbroken line\n")); err == nil || !strings.Contains(err.Error(), "shiro.ini:2:") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := readUsers(write("[roles]\nadmin = *\n")); err == nil {
		t.Fatal("a file without users was accepted")
	}
}
