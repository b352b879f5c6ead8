package mapping

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// source remembers the file name and the position of every YAML path decoded from it.
type source struct {
	file string
	at   map[string]Position
}

// pos returns the position of path, or of its nearest recorded parent, or just the file.
func (s *source) pos(path string) Position {
	if s == nil {
		return Position{}
	}
	for p := path; ; {
		if at, ok := s.at[p]; ok {
			return at
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	if at, ok := s.at[""]; ok {
		return at
	}
	return Position{File: s.file}
}

// todo is the placeholder `omniroute mapping fetch` writes where the admin must decide.
const todo = "TODO"

// maxNodes bounds the nodes decoded from one file, counting each alias expansion, so a small
// file of nested aliases cannot make decoding explode.
const maxNodes = 100_000

// Parse decodes a mapping file strictly and validates it. filename is used only in messages.
// Every problem is reported at once, as Problems sorted by position; warnings (see
// Config.Warnings) do not make Parse fail.
func Parse(data []byte, filename string) (*Config, error) {
	cfg := &Config{src: &source{file: filename, at: map[string]Position{}}}
	cfg.setDefaults()
	d := &decoder{src: cfg.src, list: &problemList{src: cfg.src}}

	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.at(Position{File: filename, Line: 1, Column: 1}, "", "empty mapping file")
			return nil, d.list.err()
		}
		d.syntax(data, err)
		return nil, d.list.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.at(d.position(&extra), "", "more than one YAML document; a mapping file holds exactly one")
	} else if !errors.Is(err, io.EOF) {
		d.syntax(data, err)
	}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.DocumentNode || isNull(n) {
		// "---" alone, or "~": a document with nothing in it.
		d.at(Position{File: filename, Line: 1, Column: 1}, "", "empty mapping file")
		return nil, d.list.err()
	}
	cfg.src.at[""] = d.position(n)
	d.decode(n, reflect.ValueOf(cfg).Elem(), "")
	if len(d.list.ps) > 0 {
		return nil, d.list.err()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

type decoder struct {
	src   *source
	list  *problemList
	nodes int
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the problems yaml.v3's parser (as opposed to its scanner) reports. For
// these it prints the 0-based line of the construct it was parsing ("line 2" for a flow
// sequence opened on line 3), and no line at all for line 1; syntax adds the 1 back.
var parserProblems = []string{
	"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle",
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// readerProblems are yaml.v3's complaints about the bytes themselves, which it reports
// without a line; syntax finds the first bad byte instead.
var readerProblems = []string{
	"control characters are not allowed", "invalid leading UTF-8", "invalid trailing UTF-8",
	"incomplete UTF-8", "invalid length of a UTF-8", "invalid Unicode character",
}

// composerProblems are reported without a line and are not about line 1.
var composerProblems = []string{"unknown anchor", "anchor '", "document contains excessive aliasing", "input error"}

// syntax turns a yaml.v3 parse error into problems with line numbers. yaml.v3 does not expose
// positions, so they come from its message: scanner errors carry the 1-based line where the
// token being scanned started, parser errors the 0-based line of the enclosing construct
// (corrected here); both leave the line out for line 1. Reader and anchor errors carry none:
// the line is found in the input.
func (d *decoder) syntax(data []byte, err error) {
	has := func(msg string, prefixes []string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(msg, p) })
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		msg, n := strings.TrimPrefix(line, "yaml: "), 0
		if m := yamlLineRE.FindStringSubmatch(line); m != nil {
			n, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		switch {
		case has(msg, parserProblems):
			n++
		case n > 0:
		case has(msg, readerProblems):
			n = lineOf(data, firstBadByte(data))
		case unknownAnchorRE.MatchString(msg):
			n = lineOf(data, bytes.Index(data, []byte("*"+unknownAnchorRE.FindStringSubmatch(msg)[1])))
		case !has(msg, composerProblems):
			n = 1 // a scanner error on line 1
		}
		d.at(Position{File: d.src.file, Line: n}, "", "invalid YAML: %s", msg)
	}
}

// firstBadByte returns the offset of the first byte YAML does not allow: invalid UTF-8, or a
// control character other than tab, line feed and carriage return. -1 when there is none.
func firstBadByte(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return i
		}
		i += size
	}
	return -1
}

// lineOf returns the 1-based line of byte offset i in data, or 0 when i < 0.
func lineOf(data []byte, i int) int {
	if i < 0 {
		return 0
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

func (d *decoder) position(n *yaml.Node) Position {
	return Position{File: d.src.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) at(pos Position, path, format string, args ...any) {
	d.list.ps = append(d.list.ps, Problem{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

// defaulter is implemented by schema types that have defaults for absent keys.
type defaulter interface{ setDefaults() }

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// kindName describes a node for "want X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias (*" + n.Value + ")"
	}
	return "an unsupported YAML node"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// decode decodes n into v (settable), recording positions and problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.at(d.position(n), path, "mapping file too large or too deeply aliased (more than %d nodes)", maxNodes)
		}
		return
	}
	if _, ok := d.src.at[path]; !ok {
		d.src.at[path] = d.position(n)
	}
	if isNull(n) && v.Kind() != reflect.Pointer {
		return // absent: keep the default
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == todo {
		d.at(d.position(n), path, "still TODO: replace it with a real value")
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.duration(n, v, path)
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		if n.Kind != yaml.ScalarNode {
			d.at(d.position(n), path, "want a string, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.at(d.position(n), path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.at(d.position(n), path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if df, ok := s.Index(i).Addr().Interface().(defaulter); ok {
				df.setDefaults()
			}
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.at(d.position(n), path, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.at(d.position(n), path, "want an integer, got %s", kindName(n))
			return
		}
		if n.Decode(&i) != nil || i < math.MinInt32 || i > math.MaxInt32 {
			d.at(d.position(n), path, "integer %s is out of range", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.at(d.position(n), path, "want a number, got %s", kindName(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.at(d.position(n), path, "want a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.at(d.position(n), path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	default:
		// Every schema type is handled above; reaching here is a bug in the schema.
		panic(fmt.Sprintf("mapping: no decoder for %s", t))
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.at(d.position(n), path, "want a duration such as 30s, got %s", kindName(n))
		return
	}
	if n.Tag == "!!int" && n.Value == "0" {
		v.SetInt(0)
		return
	}
	if n.Tag != "!!str" {
		d.at(d.position(n), path, "want a duration with a unit such as 30s or 2m, got %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.at(d.position(n), path, "invalid duration %q (want a number and a unit such as 30s, 2m or 1h30m)", n.Value)
		return
	}
	if dur < 0 {
		d.at(d.position(n), path, "duration %q must not be negative", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// field is one struct field and its YAML key.
type field struct {
	key   string
	index int
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		fs = append(fs, field{key: tag, index: i})
	}
	return fs
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.at(d.position(n), path, "want a mapping, got %s", kindName(n))
		return
	}
	if df, ok := v.Addr().Interface().(defaulter); ok {
		df.setDefaults()
	}
	fs := fieldsOf(v.Type())
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.at(d.position(k), path, "want a string key, got %s", kindName(k))
			continue
		}
		if k.Value == "<<" {
			d.at(d.position(k), path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		sub := joinKey(path, k.Value)
		if prev, ok := seen[k.Value]; ok {
			d.at(d.position(k), sub, "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		idx := slices.IndexFunc(fs, func(f field) bool { return f.key == k.Value })
		if idx < 0 {
			d.at(d.position(k), sub, "unknown key %q%s", k.Value, didYouMean(k.Value, keys))
			continue
		}
		d.decode(val, v.Field(fs[idx].index), sub)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.at(d.position(n), path, "want a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.at(d.position(k), path, "want a string key, got %s", kindName(k))
			continue
		}
		sub := joinKey(path, k.Value)
		if prev, ok := seen[k.Value]; ok {
			d.at(d.position(k), sub, "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		d.src.at[sub] = d.position(k)
		kv := reflect.New(t.Key()).Elem()
		if tu, ok := kv.Addr().Interface().(encoding.TextUnmarshaler); ok {
			if err := tu.UnmarshalText([]byte(k.Value)); err != nil {
				d.at(d.position(k), sub, "%v", err)
				continue
			}
		} else {
			kv.SetString(k.Value)
		}
		ev := reflect.New(t.Elem()).Elem()
		before := len(d.list.ps)
		d.decode(val, ev, sub)
		if len(d.list.ps) == before {
			if m.MapIndex(kv).IsValid() {
				// Two spellings of the same key, e.g. two states that parse alike.
				d.at(d.position(k), sub, "duplicate key %q", k.Value)
				continue
			}
			m.SetMapIndex(kv, ev)
		}
	}
	v.Set(m)
}

// plainKey reports whether a key can follow a dot in a YAML path: letters, digits, _ and -.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// joinKey appends a mapping key to a YAML path: a.b, or a["odd key"] for keys with other characters.
func joinKey(path, key string) string {
	if !plainKey(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *Config) setDefaults() { c.Presence.setDefaults() }

func (p *Presence) setDefaults() {
	p.Events = PresenceEvents{
		StateChangesUpdatePresence: true,
		PresenceChangesUpdateState: true,
		LoginSetsOnline:            true,
		LogoutSetsOffline:          true,
		OfflineLogsOut:             true,
	}
	p.PostCallState = State{Major: Ready}
}

func (e *PresenceEvents) setDefaults() {
	*e = PresenceEvents{true, true, true, true, true}
}

func (p *Plan) setDefaults() { p.OfferTimeout = DefaultOfferTimeout }

func (c *Channel) setDefaults() { c.Weight = 1 }
