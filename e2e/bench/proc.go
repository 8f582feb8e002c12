package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a daemon gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// daemon is one started peer process (the root of its process tree).
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when cmd.Wait returned
}

var (
	daemonsMu sync.Mutex
	daemons   []*daemon // every started daemon, for stopAll
)

// startDaemon starts argv in dir with stdout+stderr to dir/<name>.log.
// The child gets its own process group, so a Ctrl-C in the terminal reaches
// only the benchmark, which then stops the children in order, by PID;
// Pdeathsig kills the child if the benchmark itself dies.
func startDaemon(name, dir string, env []string, argv ...string) (*daemon, error) {
	logPath := dir + "/" + name + ".log"
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	daemonsMu.Lock()
	daemons = append(daemons, d)
	daemonsMu.Unlock()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM to the root PID, waits up to stopGrace, then SIGKILL.
// Descendants (workers) seen before the stop that are still alive afterwards
// (same PID and start time) get SIGKILL too, each by its PID.
func (d *daemon) stop() {
	var kids []procStat
	if ps, err := tree(d.pid()); err == nil && len(ps) > 1 {
		kids = ps[1:]
	}
	if !d.exited() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopGrace):
			fmt.Fprintf(os.Stderr, "bench: %s (pid %d) ignored SIGTERM for %s; SIGKILL\n", d.name, d.pid(), stopGrace)
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, k := range kids {
		for {
			s, err := readStat(k.pid)
			if err != nil || s.startTime != k.startTime {
				break // gone
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(k.pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// stopAll stops every started daemon, last started first.
func stopAll() {
	daemonsMu.Lock()
	ds := daemons
	daemons = nil
	daemonsMu.Unlock()
	for i := len(ds) - 1; i >= 0; i-- {
		ds[i].stop()
	}
}
