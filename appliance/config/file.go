package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// readFile parses a YAML config file into flat key → value settings and the
// line of each key, so that every error can name file:line. It rejects
// unknown keys and values of the wrong type here rather than after merging,
// because only here do we still know where a value came from.
func readFile(path string) (map[string]any, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	var doc yaml.Node
	if err := yaml.NewDecoder(f).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]any{}, map[string]int{}, nil // empty file
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	settings := map[string]any{}
	lines := map[string]int{}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return settings, lines, nil
	}
	if err := walk(path, "", root, settings, lines); err != nil {
		return nil, nil, err
	}
	return settings, lines, nil
}

func walk(path, prefix string, n *yaml.Node, settings map[string]any, lines map[string]int) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: expected a mapping of keys, found %s", path, n.Line, kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		def, known := defaults[key]
		if !known {
			if hasPrefix(key) && val.Kind == yaml.MappingNode {
				if err := walk(path, key, val, settings, lines); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%s:%d: unknown key %q (known keys: %s)", path, k.Line, key, strings.Join(Keys(), ", "))
		}
		if val.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: %s must be a single value, found %s", path, val.Line, key, kindName(val))
		}
		v, err := convert(def, val.Value)
		if err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, val.Line, key, err)
		}
		settings[key] = v
		lines[key] = k.Line
	}
	return nil
}

// convert parses s into the type of the key's default.
func convert(def any, s string) (any, error) {
	switch def.(type) {
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (e.g. 10s, 1m)", s)
		}
		return d, nil
	default:
		return s, nil
	}
}

// hasPrefix reports whether key is a section (like "zookeeper") of known keys.
func hasPrefix(key string) bool {
	for k := range defaults {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	default:
		return "something else"
	}
}

func sortStrings(s []string) { sort.Strings(s) }
