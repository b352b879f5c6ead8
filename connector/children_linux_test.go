package connector

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
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
	self := benchChildCommand
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

// benchChildCommand is this test binary in a role of TestBenchChildDiesWithTheBenchmark's.
func benchChildCommand(role string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChildDiesWithTheBenchmark$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), benchChildRoleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestBenchChildOutlivesItsStartersThread: a process that startChild starts lives while the
// benchmark's process does, even when the thread of the goroutine that called startChild ends
// first (a goroutine that exits locked to its thread ends it): Linux sends the parent-death
// signal when the thread that started the child ends, not the process.
func TestBenchChildOutlivesItsStartersThread(t *testing.T) {
	t.Parallel()
	child := benchChildCommand("child")
	type started struct {
		exited <-chan error
		err    error
		tid    int
	}
	res := make(chan started, 1)
	// The goroutine must not run on the main thread, which the runtime keeps (wedged) when a
	// goroutine exits locked to it: one that finds itself there holds it (so the next one runs
	// elsewhere) until the test ends, then gives it back.
	onMain := make(chan struct{})
	defer close(onMain)
	var try func()
	try = func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if syscall.Gettid() == os.Getpid() {
			go try()
			<-onMain
			runtime.UnlockOSThread()
			return
		}
		exited, err := startChild(child)
		res <- started{exited, err, syscall.Gettid()}
	}
	go try()
	s := <-res
	require.NoError(t, s.err)
	ended := false
	t.Cleanup(func() {
		if !ended {
			_ = child.Process.Kill()
			require.Error(t, <-s.exited, "the child ends killed")
		}
	})
	// Once the thread is gone from /proc, its parent-death signals are sent.
	require.Eventually(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", s.tid))
		return os.IsNotExist(err)
	}, 10*time.Second, time.Millisecond, "the starter's thread ends")
	select {
	case err := <-s.exited:
		ended = true
		t.Fatalf("the child ended with its starter's thread: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.True(t, processLives(t, child.Process.Pid), "the child runs")
}

// processLives reports whether process pid runs (exists, and is not a zombie left for its
// new parent to reap).
func processLives(t *testing.T, pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) || errors.Is(err, syscall.ESRCH) { // gone, or reaped while read
		return false
	}
	require.NoError(t, err)
	// After the command name: state is field 3.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return fields[0] != "Z" && fields[0] != "X"
}
