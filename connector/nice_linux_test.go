package connector

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestYieldCoresWithoutCapSysNice: root without CAP_SYS_NICE (Docker's default set) may give a
// thread nice 19 but never take it back to 0, so the load benchmark's yieldCores must then
// change nothing: no failure at the end of a rate, and no thread of the benchmark's process
// (nor a daemon it starts later) left at nice 19.
func TestYieldCoresWithoutCapSysNice(t *testing.T) {
	res := testing.Benchmark(func(b *testing.B) {
		// Capabilities are per thread: this one loses CAP_SYS_NICE, and is never unlocked,
		// so it ends with the benchmark's goroutine.
		runtime.LockOSThread()
		dropCapSysNice(b)
		defer yieldCores(b)()
	})
	require.NotZero(t, res.N, "yieldCores failed without CAP_SYS_NICE")
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		stat, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if os.IsNotExist(err) {
			continue // the thread ended
		}
		require.NoError(t, err)
		// After the command name: state is field 3, nice field 19.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		nice, err := strconv.Atoi(fields[19-3])
		require.NoError(t, err)
		require.Zero(t, nice, "thread %s left at nice %d", task.Name(), nice)
	}
}

// dropCapSysNice takes CAP_SYS_NICE out of the calling thread's effective capabilities
// (capget, capset: version 3 for the calling thread).
func dropCapSysNice(tb testing.TB) {
	const capSysNice = 23
	hdr := struct {
		version uint32
		pid     int32
	}{0x20080522, 0}
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		tb.Fatalf("capget: %v", e)
	}
	data[0].effective &^= 1 << capSysNice
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		tb.Fatalf("capset: %v", e)
	}
}
