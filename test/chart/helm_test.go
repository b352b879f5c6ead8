package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// root is the repository root, from this package's directory.
const root = "../.."

var chartDir = filepath.Join(root, "charts", "omniroute")

// helmVersion is the Makefile's HELM_VERSION: one pin for make and for these tests.
func helmVersion(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^HELM_VERSION\s*:=\s*(v\S+)\s*$`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile pins HELM_VERSION")
	return string(m[1])
}

// helmCommand returns the command line that runs the pinned helm: $HELM (make passes its
// bin/helm-VERSION), else that binary, built here once per test process when it is missing, as
// `make helm` builds it: `go install` of the pinned module, with the shared module and build
// caches, into bin/. So `go test ./...` without make builds helm once, not once per parallel
// render, and make then finds it.
func helmCommand(t *testing.T) []string {
	t.Helper()
	v := helmVersion(t)
	if h := os.Getenv("HELM"); h != "" {
		require.Truef(t, strings.HasSuffix(h, "helm-"+v), "HELM=%s is not the pinned helm %s", h, v)
		return []string{h}
	}
	p, err := filepath.Abs(filepath.Join(root, "bin", "helm-"+v))
	require.NoError(t, err)
	helmBuild.Do(func() { helmBuildErr = buildHelm(p, v) })
	require.NoError(t, helmBuildErr)
	return []string{p}
}

var (
	helmBuild    sync.Once
	helmBuildErr error
)

// buildHelm installs helm.sh/helm/v4/cmd/helm@version as path, unless path exists.
func buildHelm(path, version string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	gobin, err := os.MkdirTemp(filepath.Dir(path), ".helm-build-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(gobin) }()
	cmd := exec.CommandContext(context.Background(), "go", "install", "helm.sh/helm/v4/cmd/helm@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install helm %s: %w\n%s", version, err, out)
	}
	return os.Rename(filepath.Join(gobin, "helm"), path)
}

// helm runs the pinned helm with args and returns its stdout, or its error with stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmdline := append(helmCommand(t), args...)
	cmd := exec.CommandContext(context.Background(), cmdline[0], cmdline[1:]...)
	// helm keeps no state the tests need: point its caches and config at a temporary directory.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	args   []string
	err    error
	stderr string
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// render runs `helm template` of the release "omniroute" for a values file of
// charts/omniroute/ci plus --set pairs.
func render(t *testing.T, valuesFile string, set ...string) (string, error) {
	t.Helper()
	return renderRelease(t, "omniroute", valuesFile, set...)
}

func renderRelease(t *testing.T, release, valuesFile string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", "routing"}
	if valuesFile != "" {
		args = append(args, "-f", filepath.Join(chartDir, "ci", valuesFile))
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return helm(t, args...)
}
