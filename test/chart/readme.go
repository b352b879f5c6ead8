package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Value is one documented value of values.yaml: a `# --` comment on its key, as helm-docs
// reads them. The comment may start with a type in parentheses, "(string) ...".
type Value struct {
	Key, Type, Default, Description string
}

var typeRe = regexp.MustCompile(`^\((\w+)\)\s*`)

// Values returns the documented values of a values.yaml, in file order. A mapping without a
// `# --` comment is descended into; any other value without one is an error, as is a comment
// without a description.
func Values(data []byte) ([]Value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse values.yaml: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("values.yaml: not a mapping")
	}
	var out []Value
	var errs []error
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			desc, ok := docComment(k.HeadComment)
			if !ok {
				if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
					walk(key+".", v)
					continue
				}
				errs = append(errs, fmt.Errorf("values.yaml:%d: %s has no `# --` comment", k.Line, key))
				continue
			}
			typ := kind(v)
			if m := typeRe.FindStringSubmatch(desc); m != nil {
				typ, desc = m[1], desc[len(m[0]):]
			}
			if desc == "" {
				errs = append(errs, fmt.Errorf("values.yaml:%d: %s has an empty `# --` comment", k.Line, key))
			}
			def, err := defaultOf(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("values.yaml:%d: %s: %w", k.Line, key, err))
			}
			out = append(out, Value{Key: key, Type: typ, Default: def, Description: desc})
		}
	}
	walk("", doc.Content[0])
	return out, errors.Join(errs...)
}

// docComment returns the text of a head comment from its `# --` line on.
func docComment(head string) (string, bool) {
	lines := strings.Split(head, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# --") {
			start = i
		}
	}
	if start < 0 {
		return "", false
	}
	var words []string
	for i, l := range lines[start:] {
		l = strings.TrimPrefix(strings.TrimSpace(l), "#")
		if i == 0 {
			l = strings.TrimPrefix(l, " --")
		}
		if l = strings.TrimSpace(l); l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " "), true
}

func kind(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	}
	switch v.Tag {
	case "!!int":
		return "int"
	case "!!float":
		return "float"
	case "!!bool":
		return "bool"
	case "!!null":
		return "string"
	}
	return "string"
}

// defaultOf renders a value as compact JSON, as helm-docs does.
func defaultOf(v *yaml.Node) (string, error) {
	var x any
	if err := v.Decode(&x); err != nil {
		return "", err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// README renders the chart's README.md.gotmpl with the values table and Chart.yaml's versions.
func README(tmpl, chartYAML, values []byte) ([]byte, error) {
	vals, err := Values(values)
	if err != nil {
		return nil, err
	}
	var chart struct {
		Name        string `yaml:"name"`
		Version     string `yaml:"version"`
		AppVersion  string `yaml:"appVersion"`
		Description string `yaml:"description"`
		KubeVersion string `yaml:"kubeVersion"`
	}
	if err := yaml.Unmarshal(chartYAML, &chart); err != nil {
		return nil, fmt.Errorf("parse Chart.yaml: %w", err)
	}
	var table strings.Builder
	table.WriteString("| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n")
	for _, v := range vals {
		fmt.Fprintf(&table, "| `%s` | %s | `%s` | %s |\n", v.Key, v.Type, cell(v.Default), cell(v.Description))
	}
	t, err := template.New("README.md.gotmpl").Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("parse README.md.gotmpl: %w", err)
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]string{
		"Name": chart.Name, "Version": chart.Version, "AppVersion": chart.AppVersion,
		"Description": chart.Description, "KubeVersion": chart.KubeVersion, "Values": table.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("render README.md.gotmpl: %w", err)
	}
	return b.Bytes(), nil
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
