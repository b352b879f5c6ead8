package connector

import (
	"regexp"
	"strings"
	"testing"
)

// idPattern is the regular expression salesforceID replaced in the writer and the reader.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

// FuzzSalesforceIDAsThePattern: salesforceID gives the regular expression's answer for every
// string, multi-byte and invalid UTF-8 included (15 or 18 bytes that are fewer runes, a
// trailing newline, which $ does not take).
func FuzzSalesforceIDAsThePattern(f *testing.F) {
	alnum15 := "0JR000000000001"
	for _, s := range []string{
		"", alnum15, alnum15 + "AAA", alnum15 + "AA", alnum15 + "AAAA", alnum15 + "\n", alnum15 + "AA\n",
		"0JR0000000000é", "0JR000000000é01", "0JR00000000000€", alnum15 + "\xff", "0JR00000000000\xff",
		alnum15[:14] + "\xc3", alnum15 + "A\u00e9", strings.Repeat("é", 9), alnum15[:12] + "€", alnum15[:14] + "_",
		alnum15[:14] + " ", alnum15[:14] + "-", "00G000000000001", "０JR000000000001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := salesforceID(s), idPattern.MatchString(s); got != want {
			t.Fatalf("salesforceID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
