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

// oneSession is the -one-session flag: every peer and load tool stays in
// the benchmark's own session (see childAttr).
var oneSession bool

// childAttr is how every peer and load tool is started. By default each
// gets a session of its own, as systemd starts each service (it calls
// setsid for every unit). Linux's scheduler shares CPU between sessions
// first when autogroup is on (kernel.sched_autogroup_enabled, the Debian
// default), or between cgroups (systemd services, containers) when their
// CPU controller is on, and only then between threads. With everything in
// one session, a peer with 64 threads (httpd) gets a larger share of the
// two cores than one with two (webtier) and delays the backend's threads;
// that is not how any of them runs in production. Either way the child is
// a process group of its own, so a Ctrl-C in the terminal reaches only the
// benchmark, which then stops the children in order, by PID; Pdeathsig
// kills the child if the benchmark itself dies.
func childAttr() *syscall.SysProcAttr {
	if oneSession {
		return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// schedulingNote describes childAttr's choice for the report header.
func schedulingNote() string {
	ag := "off"
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err == nil && strings.TrimSpace(string(b)) == "1" {
		ag = "on"
	}
	if oneSession {
		return "scheduling: every peer and the load generator in the benchmark's session (-one-session), so the kernel shares CPU between their threads (autogroup " + ag + ")"
	}
	return "scheduling: every peer and the load generator in a session of its own, as systemd starts services, so the kernel shares CPU between them first (autogroup " + ag + ")"
}

// startDaemon starts argv in dir with stdout+stderr to dir/<name>.log,
// with childAttr.
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
	cmd.SysProcAttr = childAttr()
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
