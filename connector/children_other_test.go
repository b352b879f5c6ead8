//go:build !linux

package connector

import "os/exec"

// dieWithParent does nothing here: only Linux can kill a child when its parent dies
// (children_linux_test.go).
func dieWithParent(*exec.Cmd) {}
