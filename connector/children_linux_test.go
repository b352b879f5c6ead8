package connector

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dieWithParent makes cmd's process get SIGKILL when the thread that starts it ends (see
// startChild).
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// benchChildRoleEnv makes the test binary, running TestBenchChildDiesWithTheBenchmark, one of
// that test's processes: "benchmark" (it starts a child as a benchmark starts the daemon and
// the proxy) or "child" (it waits a minute).
const benchChildRoleEnv = "OMNIROUTE_TEST_BENCH_CHILD_ROLE"

// TestBenchChildDiesWithTheBenchmark: a process the benchmarks start (startChild: the daemon,
// the proxy) does not outlive the benchmark's process when that is killed (SIGKILL, as
// -test.timeout's panic or an OOM kill leaves it no time to clean up).
func TestBenchChildDiesWithTheBenchmark(t *testing.T) {
	self := func(role string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChildDiesWithTheBenchmark$", "-test.timeout=2m")
		cmd.Env = append(os.Environ(), benchChildRoleEnv+"="+role)
		cmd.Stderr = os.Stderr
		return cmd
	}
	switch os.Getenv(benchChildRoleEnv) {
	case "benchmark":
		child := self("child")
		_, err := startChild(child)
		require.NoError(t, err)
		_, _ = fmt.Fprintf(os.Stdout, "child %d\n", child.Process.Pid)
		time.Sleep(time.Minute) // until killed
		return
	case "child":
		time.Sleep(time.Minute) // until killed, with or after its parent
		return
	}
	t.Parallel()
	bench := self("benchmark")
	out, err := bench.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, bench.Start())
	t.Cleanup(func() {
		_ = bench.Process.Kill()
		_ = bench.Wait()
	})
	pid := 0
	for sc := bufio.NewScanner(out); pid == 0 && sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "child "); ok {
			pid, err = strconv.Atoi(v)
			require.NoError(t, err)
		}
	}
	require.NotZero(t, pid, "the benchmark's process names its child")
	require.True(t, processLives(t, pid), "the child runs")
	t.Cleanup(func() {
		if processLives(t, pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	require.NoError(t, bench.Process.Signal(syscall.SIGKILL))
	_ = bench.Wait()
	require.Eventually(t, func() bool { return !processLives(t, pid) }, 3*time.Second, 10*time.Millisecond,
		"the child (pid %d) dies with the benchmark's process", pid)
}

// processLives reports whether process pid runs (exists, and is not a zombie left for its
// new parent to reap).
func processLives(t *testing.T, pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	// After the command name: state is field 3.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return fields[0] != "Z" && fields[0] != "X"
}
