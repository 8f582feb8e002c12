package peer

import (
	"path/filepath"
	"syscall"
	"testing"
)

// HTTPD is a private Apache httpd (Debian's apache2 binary) started on a
// config file of the test's: nothing of /etc/apache2 is read.
type HTTPD struct {
	p *proc
}

// HTTPDBase is what every private httpd config needs before its own lines:
// its files under dir, one child process, and the modules named (as
// mod_NAME.so from Debian's module directory). log_config is built in and
// must not be named.
func HTTPDBase(dir string, modules ...string) string {
	s := "ServerRoot \"" + dir + "\"\nDefaultRuntimeDir \"" + dir + "\"\nPidFile \"" + dir + "/httpd.pid\"\n" +
		"ErrorLog \"" + dir + "/error.log\"\nLogLevel warn\nServerName 127.0.0.1\nUser www-data\nGroup www-data\n" +
		"LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n" +
		"StartServers 1\nServerLimit 1\nThreadsPerChild 16\nMaxRequestWorkers 16\n"
	for _, m := range modules {
		s += "LoadModule " + m + "_module /usr/lib/apache2/modules/mod_" + m + ".so\n"
	}
	return s
}

// StartHTTPD starts `apache2 -f conf -DFOREGROUND` and returns once
// listenAddr accepts connections. In t.Cleanup it sends SIGTERM to the
// parent's PID (httpd stops its children) and waits.
func StartHTTPD(t testing.TB, conf, listenAddr string) *HTTPD {
	t.Helper()
	RequireTools(t, "apache2")
	p, err := startProc(filepath.Join(filepath.Dir(conf), "httpd.out"), "apache2", "-f", conf, "-DFOREGROUND")
	if err != nil {
		t.Fatalf("StartHTTPD: %v", err)
	}
	p.stopSig = syscall.SIGTERM
	t.Cleanup(func() {
		if err, killed := p.stop(stopGrace); killed {
			t.Errorf("httpd (pid %d) ignored SIGTERM and was killed", p.pid())
		} else if err != nil && t.Failed() {
			t.Logf("httpd (pid %d) exited: %s", p.pid(), exitDescription(err))
		}
	})
	ready := poll(readyTimeout, func() bool {
		if p.exited() {
			return true
		}
		return accepts(listenAddr)
	})
	if p.exited() || !ready {
		t.Fatalf("httpd did not listen on %s; its output:\n%s", listenAddr, tailLines(p.logs(), 30))
	}
	return &HTTPD{p: p}
}

// PID returns the httpd parent's process ID.
func (h *HTTPD) PID() int { return h.p.pid() }
