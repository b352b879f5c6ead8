// Package mapping is the model of omniroute's admin-facing YAML file: Salesforce queues to
// interaction plans, service channels to interaction classes and capacity weights, capacity
// profiles, and the two-way presence-status <-> agent-state tables of seed 003.
//
// Parse decodes a file strictly (unknown keys, duplicate keys, wrong types and bad durations are
// errors) and validates it, reporting every problem at once as "file:line:col: yaml.path:
// message". ValidateOrg checks a Config against org metadata. The presence functions
// (StateForStatus, StatusForState, PostWorkStatus, OnStateChange, OnStatusChange and OnEcho)
// are pure; EchoFilter is their one piece of state, with time passed in.
//
// The package never does I/O, never reads the clock, the environment or the network: callers
// read files (cmd/omniroute, connector) and pass time in. It imports nothing from this module.
package mapping
