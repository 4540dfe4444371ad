package runner

import "testing"

func TestInterpolate(t *testing.T) {
	b := Bindings{Ports: map[string]int{"http": 31001, "health": 31002}, TaskID: "www-data-prod-hello-0-abc", User: "www-data", Instance: 3, Hostname: "agent-1"}
	for _, tc := range []struct{ in, want, err string }{
		{in: "python -m http.server {{thermos.ports[http]}}", want: "python -m http.server 31001"},
		{in: "{{ thermos.ports[health] }} {{thermos.ports.http}}", want: "31002 31001"},
		{in: "echo {{thermos.task_id}} {{thermos.user}} {{mesos.instance}} {{mesos.hostname}}", want: "echo www-data-prod-hello-0-abc www-data 3 agent-1"},
		{in: "no mustaches; a } and { alone", want: "no mustaches; a } and { alone"},
		{in: "{{thermos.ports[admin]}}", err: "unbound reference {{thermos.ports[admin]}}"},
		{in: "{{profile.cmd}} and {{mesos.instance}} and {{x}}", err: "unbound reference {{profile.cmd}}, {{x}}"},
		{in: "{{thermos.ports[http}}", err: "unbound reference {{thermos.ports[http}}"},
	} {
		got, err := b.Interpolate(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
