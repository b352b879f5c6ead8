package emulator

import (
	"path/filepath"
	"sort"
	"strings"
)

func lower(s string) string { return strings.ToLower(s) }

func isAbs(p string) bool { return filepath.IsAbs(p) }

func joinDir(file, rel string) string { return filepath.Join(filepath.Dir(file), rel) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
