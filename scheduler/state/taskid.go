package state

import (
	"strconv"
	"strings"
)

// TaskID builds an Aurora task id, <role>-<env>-<job>-<instance>-<uuid>, with
// every character outside [A-Za-z0-9_-] replaced by '-' (TaskIdGenerator.java).
// A non-ASCII character becomes a single '-'.
func TaskID(role, env, job string, instance int, uuid string) string {
	raw := role + "-" + env + "-" + job + "-" + strconv.Itoa(instance) + "-" + uuid
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '-'
	}, raw)
}
