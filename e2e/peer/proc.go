package peer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Bounds used when waiting on processes and peers. They bound waits only;
// no assertion compares a measured duration against them.
const (
	// stopGrace is how long a process gets to exit after SIGTERM before it
	// is sent SIGKILL.
	stopGrace = 10 * time.Second
	// readyTimeout bounds waiting for a started peer to become ready.
	readyTimeout = 30 * time.Second
	// pollInterval is the period of readiness and confirmation polls.
	pollInterval = 20 * time.Millisecond
)

// proc is one started child process. Its single goroutine (started by
// startProc) owns cmd.Wait and ends when the process exits; stop makes sure
// it does.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and waitErr is set
	waitErr error         // result of cmd.Wait; read only after done is closed
	stopSig os.Signal     // what stop sends first; nil: SIGTERM
}

// startProc starts argv with stdout and stderr appended to logPath.
func startProc(logPath string, argv ...string) (*proc, error) {
	return startProcEnv(logPath, nil, argv...)
}

// startProcEnv is startProc with env ("K=V") added to the environment.
func startProcEnv(logPath string, env []string, argv ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor; ours is not needed
	// after Start. Passing an *os.File means exec starts no copy goroutines.
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// If the test binary dies without running its cleanups (a panic or a
	// -timeout), the kernel kills the child instead of leaving it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (or stopSig; and SIGCONT, in case the process was
// paused), waits up to grace for it to exit, then sends SIGKILL. It returns the process's exit
// error (nil for exit status 0) and whether SIGKILL was needed.
func (p *proc) stop(grace time.Duration) (waitErr error, killed bool) {
	if !p.exited() {
		sig := p.stopSig
		if sig == nil {
			sig = syscall.SIGTERM
		}
		_ = p.cmd.Process.Signal(sig)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			killed = true
			_ = p.cmd.Process.Kill()
			<-p.done // SIGKILL cannot be ignored; Wait returns promptly.
		}
	}
	return p.waitErr, killed
}

// logs returns the whole log file.
func (p *proc) logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	return string(b)
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exitDescription renders a cmd.Wait error for messages.
func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// poll calls cond every pollInterval until it returns true or timeout passes.
// It returns false on timeout. cond is called at least once.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

// accepts reports whether something listens on addr: a TCP connection to it
// is established. A connection whose local address equals addr is not
// counted: with nothing listening on a port in the ephemeral range, the
// kernel can pick that very port as the dial's source and connect the
// socket to itself (TCP simultaneous open), which would report a peer
// ready before it has bound its port.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	return c.LocalAddr().String() != c.RemoteAddr().String()
}
