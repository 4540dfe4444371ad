package announcer

import (
	"errors"
	"maps"
	"testing"

	"github.com/aurorabox/aurorabox/serverset"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

func strp(s string) *string { return &s }

func TestEndpoints(t *testing.T) {
	const host = "agent1.example"
	tests := []struct {
		name     string
		ann      schema.Announcer
		ports    map[string]int
		primary  int
		extra    map[string]int // resolved named ports
		cycleErr bool
	}{
		{
			name:    "default portmap aliases aurora to the primary port",
			ann:     schema.Announcer{},
			ports:   map[string]int{"http": 31337, "health": 31338},
			primary: 31337,
			extra:   map[string]int{"http": 31337, "health": 31338, "aurora": 31337},
		},
		{
			name:    "empty portmap has no default alias",
			ann:     schema.Announcer{Portmap: map[string]string{}},
			ports:   map[string]int{"http": 31337},
			primary: 31337,
			extra:   map[string]int{"http": 31337},
		},
		{
			name:    "primary port not allocated registers port 0",
			ann:     schema.Announcer{},
			ports:   map[string]int{"health": 31338},
			primary: 0,
			extra:   map[string]int{"health": 31338}, // aurora -> http is unresolved, dropped
		},
		{
			name:    "no ports at all",
			ann:     schema.Announcer{},
			ports:   nil,
			primary: 0,
			extra:   map[string]int{},
		},
		{
			name:    "custom primary port",
			ann:     schema.Announcer{PrimaryPort: strp("thrift")},
			ports:   map[string]int{"thrift": 9090, "http": 8080},
			primary: 9090,
			extra:   map[string]int{"thrift": 9090, "http": 8080, "aurora": 9090},
		},
		{
			name: "alias chain",
			ann: schema.Announcer{Portmap: map[string]string{
				"a": "b", "b": "c", "c": "http", "aurora": "{{primary_port}}",
			}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000, "a": 31000, "b": 31000, "c": 31000, "aurora": 31000},
		},
		{
			name: "alias to an alias of the primary port",
			ann: schema.Announcer{Portmap: map[string]string{
				"aurora": "{{primary_port}}", "admin": "aurora",
			}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000, "aurora": 31000, "admin": 31000},
		},
		{
			name:    "primary port is itself an alias",
			ann:     schema.Announcer{PrimaryPort: strp("service"), Portmap: map[string]string{"service": "http"}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000, "service": 31000},
		},
		{
			name: "literal integers",
			ann: schema.Announcer{Portmap: map[string]string{
				"static": "8080", "spaced": " 9090 ", "plus": "+7070", "via": "static",
			}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000, "static": 8080, "spaced": 9090, "plus": 7070, "via": 8080},
		},
		{
			name:    "primary port mapped to a literal",
			ann:     schema.Announcer{Portmap: map[string]string{"http": "80", "aurora": "{{primary_port}}"}},
			ports:   map[string]int{},
			primary: 80,
			extra:   map[string]int{"http": 80, "aurora": 80},
		},
		{
			name:    "assigned port wins over a portmap entry of the same name",
			ann:     schema.Announcer{Portmap: map[string]string{"http": "80"}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000},
		},
		{
			name:    "mustache with spaces",
			ann:     schema.Announcer{PrimaryPort: strp("health"), Portmap: map[string]string{"x": "{{ primary_port }}"}},
			ports:   map[string]int{"health": 31001},
			primary: 31001,
			extra:   map[string]int{"health": 31001, "x": 31001},
		},
		{
			name: "unresolvable values are dropped",
			ann: schema.Announcer{Portmap: map[string]string{
				"thrift": "service", "other": "{{thermos.ports[nope]}}", "hex": "0x50",
			}},
			ports:   map[string]int{"http": 31000},
			primary: 31000,
			extra:   map[string]int{"http": 31000},
		},
		{
			name:     "two-alias cycle",
			ann:      schema.Announcer{Portmap: map[string]string{"a": "b", "b": "a"}},
			ports:    map[string]int{"http": 31000},
			cycleErr: true,
		},
		{
			name:     "self alias",
			ann:      schema.Announcer{Portmap: map[string]string{"a": "a"}},
			ports:    map[string]int{"http": 31000},
			cycleErr: true,
		},
		{
			name:     "chain into a cycle",
			ann:      schema.Announcer{Portmap: map[string]string{"x": "a", "a": "b", "b": "c", "c": "a"}},
			ports:    map[string]int{"http": 31000},
			cycleErr: true,
		},
		{
			name:     "primary named after its own default alias, unassigned",
			ann:      schema.Announcer{PrimaryPort: strp("aurora")},
			ports:    map[string]int{"http": 31000},
			cycleErr: true, // {"aurora": "aurora"}
		},
		{
			name:    "primary named after its own default alias, assigned",
			ann:     schema.Announcer{PrimaryPort: strp("aurora")},
			ports:   map[string]int{"aurora": 31000},
			primary: 31000,
			extra:   map[string]int{"aurora": 31000},
		},
		{
			name:    "a cycle broken by an assigned port",
			ann:     schema.Announcer{Portmap: map[string]string{"a": "b", "b": "a"}},
			ports:   map[string]int{"http": 31000, "b": 31005},
			primary: 31000,
			extra:   map[string]int{"http": 31000, "a": 31005, "b": 31005},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			primary, additional, err := Endpoints(tc.ann, tc.ports, host)
			if tc.cycleErr {
				if !errors.Is(err, ErrPortmapCycle) {
					t.Fatalf("err = %v, want ErrPortmapCycle", err)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := (serverset.Endpoint{Host: host, Port: tc.primary}); primary != want {
				t.Errorf("primary = %+v, want %+v", primary, want)
			}
			want := map[string]serverset.Endpoint{}
			for name, port := range tc.extra {
				want[name] = serverset.Endpoint{Host: host, Port: port}
			}
			if !maps.Equal(additional, want) {
				t.Errorf("additional = %v, want %v", additional, want)
			}
		})
	}
}

func TestEndpointsDoesNotModifyInputs(t *testing.T) {
	pm := map[string]string{"aurora": "{{primary_port}}"}
	ports := map[string]int{"http": 1}
	if _, _, err := Endpoints(schema.Announcer{Portmap: pm}, ports, "h"); err != nil {
		t.Fatal(err)
	}
	if pm["aurora"] != "{{primary_port}}" || len(pm) != 1 || len(ports) != 1 {
		t.Errorf("inputs modified: %v %v", pm, ports)
	}
}

func TestCycleErrorIsDeterministic(t *testing.T) {
	ann := schema.Announcer{Portmap: map[string]string{"b": "c", "c": "b", "a": "b"}}
	_, _, first := Endpoints(ann, nil, "h")
	for range 20 {
		_, _, err := Endpoints(ann, nil, "h")
		if err == nil || err.Error() != first.Error() {
			t.Fatalf("error %v, earlier %v", err, first)
		}
	}
	if want := "cycle in announcer portmap: a -> b -> c -> b"; first.Error() != want {
		t.Errorf("error %q, want %q", first, want)
	}
}

func TestServerSetPath(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", "/aurora/www-data/prod/hello"},
		{"/aurora", "/aurora/www-data/prod/hello"},
		{"/aurora/", "/aurora/www-data/prod/hello"},
		{"/aurora/svc", "/aurora/svc/www-data/prod/hello"},
		{"custom", "/custom/www-data/prod/hello"},
	} {
		if got := ServerSetPath(tc.base, "www-data", "prod", "hello"); got != tc.want {
			t.Errorf("ServerSetPath(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}
