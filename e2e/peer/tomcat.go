package peer

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tomcat 10 as installed by the Debian package tomcat10 (which pulls in
// default-jre-headless). CATALINA_HOME holds Jasper and its JDT compiler, so
// JSPs compile with the JRE alone.
const (
	TomcatHome       = "/usr/share/tomcat10"
	TomcatCatalinaSh = TomcatHome + "/bin/catalina.sh"
)

// Defaults of TomcatOptions.
const (
	DefaultAJPSecret         = "s3cret-ajp"
	DefaultAllowedAttributes = "^X_.*"
)

const (
	// tomcatReadyTimeout bounds one start: JVM start (~3 s), the compile
	// of echo.jsp on the first request (~1.5 s), on a loaded 2-core machine.
	tomcatReadyTimeout = 60 * time.Second
	// tomcatStopGrace is how long Tomcat gets to shut down after SIGTERM
	// (normally ~1 s) before it is killed.
	tomcatStopGrace = 15 * time.Second
	// cpingTimeout bounds one CPING/CPONG exchange. A connector that failed
	// to start can keep its port bound and never answer.
	cpingTimeout = 2 * time.Second
	// tomcatStartAttempts bounds retries when a chosen port was taken
	// between picking it and Tomcat binding it (first start only).
	tomcatStartAttempts = 3
)

// EchoPath is the path of the echo page every Tomcat serves; see StartTomcat.
const EchoPath = "/echo.jsp"

//go:embed testdata/echo.jsp
var echoJSP []byte

var errTomcatPortTaken = errors.New("peer: tomcat could not bind its ports")

// TomcatOptions configure StartTomcat. The zero value is the PEERS.md setup.
type TomcatOptions struct {
	// Secret is the AJP connector's secret (secretRequired="true" always).
	// Default DefaultAJPSecret.
	Secret string
	// PacketSize is the AJP connector's packetSize in bytes (8192..65536);
	// 0 leaves Tomcat's default, 8192.
	PacketSize int
	// AllowedAttributes is the AJP connector's
	// allowedRequestAttributesPattern (a Java regex): request attributes
	// Tomcat does not know that do not match it get a 403. Default
	// DefaultAllowedAttributes.
	AllowedAttributes string
	// JvmRoute, when set, is the Engine's jvmRoute: session ids end in
	// "." + JvmRoute.
	JvmRoute string
	// IP is the loopback address both connectors listen on. Default
	// 127.0.0.1. Tomcats on different IPs with the same AJPPort stand for
	// the addresses of one DNS name.
	IP string
	// AJPPort, when set, is the AJP connector's port instead of a free one
	// (the HTTP port is still picked free). StartTomcat fails if it is
	// taken on IP.
	AJPPort int
}

// Tomcat is a running Tomcat 10 with an HTTP/1.1 connector and an AJP/1.3
// connector on 127.0.0.1 (or TomcatOptions.IP), serving /echo.jsp from a private CATALINA_BASE.
// It keeps its ports and its work/ directory (compiled JSPs) across Stop and
// Restart.
type Tomcat struct {
	opts     TomcatOptions
	base     string // CATALINA_BASE
	ip       string // the connectors' address
	logPath  string
	httpPort int
	ajpPort  int

	mu sync.Mutex // guards p: the current JVM, nil before the first start
	p  *proc
}

// StartTomcat writes a private CATALINA_BASE under t.TempDir() (server.xml,
// web.xml, context.xml with jar scanning off, logging.properties, setenv.sh,
// webapps/ROOT/echo.jsp), picks free ports on 127.0.0.1 (or o.IP) for the
// HTTP and AJP connectors (the AJP one is o.AJPPort when set), runs `catalina.sh run` in the foreground (its PID is the JVM's)
// and returns once a GET of /echo.jsp over HTTP answers 200 (which also
// compiles the page) and the AJP connector answers a CPING with CPONG, within
// 60 s. In t.Cleanup it stops Tomcat with SIGTERM (SIGKILL after 15 s) and,
// if the test failed, logs the last 50 lines of its log.
//
// The AJP connector: secretRequired="true" secret=Secret,
// tomcatAuthentication="false" (the proxy's REMOTE_USER is trusted),
// allowedRequestAttributesPattern=AllowedAttributes, maxPostSize="-1",
// packetSize=PacketSize when set. Without tomcat10 or java the test is
// skipped (failed under WEBTIER_E2E_REQUIRE=1).
//
// /echo.jsp answers application/json, one object:
//
//	{"method":"GET","requestURI":"/echo.jsp","queryString":"a=1"|null,
//	 "protocol":"HTTP/1.1","scheme":"http","isSecure":false,
//	 "serverName":"127.0.0.1","serverPort":8080,"remoteAddr":"127.0.0.1",
//	 "remoteHost":"127.0.0.1","remotePort":40000,"localAddr":"127.0.0.1",
//	 "localPort":8080,"remoteUser":null,"authType":null,"contentType":null,
//	 "contentLength":-1,"bodyLength":0,"bodySha256":"e3b0...",
//	 "sessionId":null,"headers":[["host","127.0.0.1:8080"],...],
//	 "attributes":{"X_TENANT":"acme",...}}
//
// It reads the body to EOF before anything else (bodyLength, bodySha256 in
// hex). headers are [name, value] pairs: names in order of first arrival,
// each name's values in arrival order (over AJP, coded headers arrive
// lower-case). attributes holds the non-null ones among the TLS attributes
// (cipher_suite, key_size, ssl_session_id, X509Certificate as the leaf's
// subject DN, secure_protocol_version), JK_LB_ACTIVATION and the names listed
// in the request header X-Echo-Attrs ("A,B"), all as strings. sessionId is
// getRequestedSessionId(). Query parameters: status=NNN sets the status;
// pad=N adds a last field "pad" of N 'x' bytes; cookies=N sets cookies c1=v1
// ... cN=vN; session=1 creates an HttpSession (Set-Cookie JSESSIONID=<id>,
// ".<JvmRoute>" at the end when JvmRoute is set). No other request gets a
// session.
func StartTomcat(t testing.TB, o TomcatOptions) *Tomcat {
	t.Helper()
	requireTomcat(t)
	if o.Secret == "" {
		o.Secret = DefaultAJPSecret
	}
	if o.AllowedAttributes == "" {
		o.AllowedAttributes = DefaultAllowedAttributes
	}
	if o.PacketSize != 0 && (o.PacketSize < 8192 || o.PacketSize > 65536) {
		t.Fatalf("StartTomcat: PacketSize %d out of range 8192..65536", o.PacketSize)
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if ip := net.ParseIP(o.IP); ip == nil || !ip.IsLoopback() {
		t.Fatalf("StartTomcat: IP %q is not a loopback address", o.IP)
	}
	tc := &Tomcat{opts: o, base: t.TempDir(), ip: o.IP}
	tc.logPath = filepath.Join(tc.base, "logs", "out.log")
	if err := tc.writeBase(); err != nil {
		t.Fatalf("StartTomcat: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tomcat log (%s), last 50 lines:\n%s", tc.logPath, tailLines(tc.Log(), 50))
		}
	})
	t.Cleanup(func() { tc.stop(t) })

	for attempt := 1; ; attempt++ {
		tc.httpPort, tc.ajpPort = twoFreePorts(t, tc.ip)
		if o.AJPPort != 0 {
			for tc.httpPort == o.AJPPort {
				tc.httpPort, _ = twoFreePorts(t, tc.ip)
			}
			tc.ajpPort = o.AJPPort
		}
		if err := tc.writeServerXML(); err != nil {
			t.Fatalf("StartTomcat: %v", err)
		}
		err := tc.start()
		if err == nil {
			return tc
		}
		if errors.Is(err, errTomcatPortTaken) && attempt < tomcatStartAttempts {
			t.Logf("StartTomcat: %v; retrying with other ports", err)
			continue
		}
		t.Fatalf("StartTomcat: %v", err)
	}
}

// requireTomcat skips (or fails, see RequireEnv) when Tomcat 10 or a Java
// runtime is missing.
func requireTomcat(t testing.TB) {
	t.Helper()
	if missing := InstalledTomcat(); len(missing) > 0 {
		unavailable(t, "missing tools: %s; e2e/test.sh installs them (run it as root)", strings.Join(missing, ", "))
	}
}

// HTTPAddr returns "ip:port" of the HTTP/1.1 connector (ip 127.0.0.1 unless
// TomcatOptions.IP is set).
func (tc *Tomcat) HTTPAddr() string { return net.JoinHostPort(tc.ip, fmt.Sprint(tc.httpPort)) }

// AJPAddr returns "ip:port" of the AJP/1.3 connector.
func (tc *Tomcat) AJPAddr() string { return net.JoinHostPort(tc.ip, fmt.Sprint(tc.ajpPort)) }

// IP returns the address both connectors listen on.
func (tc *Tomcat) IP() string { return tc.ip }

// AJPPort returns the AJP connector's port.
func (tc *Tomcat) AJPPort() int { return tc.ajpPort }

// Secret returns the AJP connector's secret.
func (tc *Tomcat) Secret() string { return tc.opts.Secret }

// Base returns CATALINA_BASE, the private directory Tomcat runs from.
func (tc *Tomcat) Base() string { return tc.base }

// PID returns the process ID of the running JVM, or 0 when stopped.
func (tc *Tomcat) PID() int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.p == nil || tc.p.exited() {
		return 0
	}
	return tc.p.pid()
}

// Log returns Tomcat's console log so far (stdout and stderr of all runs).
func (tc *Tomcat) Log() string {
	out, err := os.ReadFile(tc.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", tc.logPath, err)
	}
	return string(out)
}

// Stop stops Tomcat with SIGTERM (SIGKILL after 15 s) and waits for the JVM
// to exit. Connections to its ports are then refused. Restart brings it back.
func (tc *Tomcat) Stop(t testing.TB) {
	t.Helper()
	tc.stop(t)
}

func (tc *Tomcat) stop(t testing.TB) {
	t.Helper()
	tc.mu.Lock()
	p := tc.p
	tc.mu.Unlock()
	if p == nil || p.exited() {
		return
	}
	if _, killed := p.stop(tomcatStopGrace); killed {
		t.Logf("tomcat (pid %d) did not exit within %v of SIGTERM and was killed", p.pid(), tomcatStopGrace)
	}
}

// Restart stops Tomcat if it runs and starts it again on the same ports,
// with the same CATALINA_BASE (so the compiled echo.jsp in work/ is reused),
// and returns once it is ready again (see StartTomcat). Sessions do not
// survive.
func (tc *Tomcat) Restart(t testing.TB) {
	t.Helper()
	tc.stop(t)
	if err := tc.start(); err != nil {
		t.Fatalf("Restart tomcat (http %s, ajp %s): %v", tc.HTTPAddr(), tc.AJPAddr(), err)
	}
}

// start runs catalina.sh and waits for readiness.
func (tc *Tomcat) start() error {
	logStart := fileSize(tc.logPath)
	p, err := startProc(tc.logPath, tc.baseConfig().Command()...)
	if err != nil {
		return err
	}
	tc.mu.Lock()
	tc.p = p
	tc.mu.Unlock()

	newLog := func() string {
		log := tc.Log()
		if int64(len(log)) >= logStart {
			log = log[logStart:]
		}
		return log
	}
	// No keep-alive: no connection (or its goroutines) outlives the probe.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	deadline := time.Now().Add(tomcatReadyTimeout)
	httpOK := false
	var lastErr error
	var portTaken bool
	ready := poll(tomcatReadyTimeout, func() bool {
		if p.exited() {
			return true
		}
		if strings.Contains(newLog(), "Address already in use") {
			portTaken = true
			return true
		}
		if !httpOK {
			if lastErr = tc.probeHTTP(tr, time.Until(deadline)); lastErr != nil {
				return false
			}
			httpOK = true
		}
		lastErr = AJPPing(tc.AJPAddr(), cpingTimeout)
		return lastErr == nil
	})
	switch {
	case p.exited():
		return fmt.Errorf("tomcat exited (%s) before it was ready; log:\n%s",
			exitDescription(p.waitErr), tailLines(newLog(), 50))
	case portTaken:
		p.stop(tomcatStopGrace)
		return fmt.Errorf("%w: http %s, ajp %s", errTomcatPortTaken, tc.HTTPAddr(), tc.AJPAddr())
	case !ready:
		p.stop(tomcatStopGrace)
		return fmt.Errorf("tomcat (pid %d) not ready within %v (http %s ok=%v, ajp %s): %v; log:\n%s",
			p.pid(), tomcatReadyTimeout, tc.HTTPAddr(), httpOK, tc.AJPAddr(), lastErr, tailLines(newLog(), 50))
	}
	return nil
}

// probeHTTP GETs /echo.jsp and checks that it is the echo page answering.
func (tc *Tomcat) probeHTTP(tr *http.Transport, timeout time.Duration) error {
	if timeout <= 0 {
		return errors.New("no time left")
	}
	c := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := c.Get("http://" + tc.HTTPAddr() + EchoPath + "?ready=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"requestURI":"`+EchoPath+`"`)) {
		return fmt.Errorf("GET %s: %s: %.200q", EchoPath, resp.Status, body)
	}
	return nil
}

// AJPPing sends an AJP13 CPING (12 34 00 01 0A) to addr on a new connection
// and expects CPONG (41 42 00 01 09) within timeout. The CPING needs no
// secret.
func AJPPing(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{0x12, 0x34, 0x00, 0x01, 0x0A}); err != nil {
		return fmt.Errorf("cping %s: %w", addr, err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("cping %s: no cpong: %w", addr, err)
	}
	if want := []byte{0x41, 0x42, 0x00, 0x01, 0x09}; !bytes.Equal(got, want) {
		return fmt.Errorf("cping %s: got % x, want cpong % x", addr, got, want)
	}
	return nil
}

// baseConfig is the CATALINA_BASE StartTomcat writes for tc's options.
func (tc *Tomcat) baseConfig() TomcatBase {
	ajp := fmt.Sprintf(`allowedRequestAttributesPattern="%s"
               maxPostSize="-1"`, xmlAttr(tc.opts.AllowedAttributes))
	if tc.opts.PacketSize != 0 {
		ajp += fmt.Sprintf("\n               packetSize=\"%d\"", tc.opts.PacketSize)
	}
	var engine string
	if tc.opts.JvmRoute != "" {
		engine = `jvmRoute="` + xmlAttr(tc.opts.JvmRoute) + `"`
	}
	return TomcatBase{
		Dir: tc.base, IP: tc.ip, HTTPPort: tc.httpPort, AJPPort: tc.ajpPort, Secret: tc.opts.Secret,
		AJPAttrs: ajp, EngineAttrs: engine, JavaOpts: TomcatFastStartJavaOpts, JSP: true,
		Files: map[string]string{EchoPath: string(echoJSP)},
	}
}

// writeBase writes everything in CATALINA_BASE except server.xml, which
// holds the ports (writeServerXML).
func (tc *Tomcat) writeBase() error { return tc.baseConfig().WriteFiles() }

func (tc *Tomcat) writeServerXML() error { return tc.baseConfig().WriteServerXML() }

// TomcatBase is a private CATALINA_BASE for the Debian tomcat10 package:
// conf/server.xml with an HTTP/1.1 and an AJP/1.3 connector and no
// shutdown port (stop Tomcat with SIGTERM to the JVM's PID), a web.xml
// with the default servlet (and Jasper when JSP is set), context.xml with
// jar scanning off, console logging, bin/setenv.sh with JavaOpts, and
// Files under webapps/ROOT. StartTomcat writes one for the tests; e2e/bench
// writes one with benchmark JVM flags and starts Command itself.
type TomcatBase struct {
	Dir string // CATALINA_BASE
	// IP is the address both connectors listen on.
	IP                string
	HTTPPort, AJPPort int
	// Secret is the AJP connector's secret (secretRequired="true" always;
	// tomcatAuthentication="false": the proxy's REMOTE_USER is trusted).
	Secret string
	// HTTPAttrs, AJPAttrs and EngineAttrs are extra XML attributes of the
	// HTTP connector, the AJP connector and the Engine (written as given).
	HTTPAttrs, AJPAttrs, EngineAttrs string
	// JavaOpts is JAVA_OPTS in bin/setenv.sh.
	JavaOpts string
	// JSP maps *.jsp to Jasper's JspServlet in web.xml (and sets a 30
	// minute session timeout); without it only the default servlet
	// (static files, listings off) is mapped.
	JSP bool
	// Files are written under webapps/ROOT, by path ("/echo.jsp").
	Files map[string]string
}

// TomcatFastStartJavaOpts make the JVM start faster (C1 only, serial GC);
// the urandom seed source keeps session id generation from waiting on
// entropy. StartTomcat uses them.
const TomcatFastStartJavaOpts = "-Djava.awt.headless=true -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k -Djava.security.egd=file:/dev/./urandom"

// Write writes the whole CATALINA_BASE.
func (b TomcatBase) Write() error {
	if err := b.WriteFiles(); err != nil {
		return err
	}
	return b.WriteServerXML()
}

// WriteFiles writes everything in CATALINA_BASE except conf/server.xml,
// which holds the ports (WriteServerXML).
func (b TomcatBase) WriteFiles() error {
	for _, d := range []string{"conf", "bin", "logs", "temp", "work", "webapps/ROOT"} {
		if err := os.MkdirAll(filepath.Join(b.Dir, d), 0o755); err != nil {
			return err
		}
	}
	webXML := tomcatWebXML
	if !b.JSP {
		webXML = tomcatStaticWebXML
	}
	files := map[string]string{
		"conf/web.xml":            webXML,
		"conf/context.xml":        tomcatContextXML,
		"conf/logging.properties": tomcatLogging,
		"bin/setenv.sh":           `JAVA_OPTS="` + b.JavaOpts + `"` + "\n",
	}
	for path, content := range b.Files {
		files["webapps/ROOT/"+strings.TrimPrefix(path, "/")] = content
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteServerXML writes conf/server.xml.
func (b TomcatBase) WriteServerXML() error {
	attrs := func(a string) string {
		if a == "" {
			return ""
		}
		return "\n               " + a
	}
	engine := ""
	if b.EngineAttrs != "" {
		engine = " " + b.EngineAttrs
	}
	conf := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by webtier's e2e/peer.TomcatBase. No shutdown port: stop with SIGTERM. -->
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector address="%s" port="%d" protocol="HTTP/1.1" connectionTimeout="20000"%s/>
    <Connector address="%s" port="%d" protocol="AJP/1.3"
               secretRequired="true" secret="%s"
               tomcatAuthentication="false"%s/>
    <Engine name="Catalina" defaultHost="localhost"%s>
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
`, b.IP, b.HTTPPort, attrs(b.HTTPAttrs), b.IP, b.AJPPort, xmlAttr(b.Secret), attrs(b.AJPAttrs), engine)
	return os.WriteFile(filepath.Join(b.Dir, "conf", "server.xml"), []byte(conf), 0o644)
}

// Command is Tomcat's command line: `catalina.sh run` with CATALINA_HOME,
// CATALINA_BASE and CATALINA_TMPDIR set and the caller's JAVA_OPTS,
// CATALINA_OPTS, JAVA_TOOL_OPTIONS and JDK_JAVA_OPTIONS dropped (ours are in
// bin/setenv.sh). catalina.sh execs java in the foreground, so the started
// process's PID is the JVM's.
func (b TomcatBase) Command() []string {
	return []string{"env",
		"-u", "JAVA_OPTS", "-u", "CATALINA_OPTS", "-u", "JAVA_TOOL_OPTIONS", "-u", "JDK_JAVA_OPTIONS",
		"CATALINA_HOME=" + TomcatHome,
		"CATALINA_BASE=" + b.Dir,
		"CATALINA_TMPDIR=" + filepath.Join(b.Dir, "temp"),
		TomcatCatalinaSh, "run"}
}

// InstalledTomcat returns what is missing to run Tomcat 10 (catalina.sh of
// the tomcat10 package, a java on PATH), nil when nothing is.
func InstalledTomcat() []string {
	var missing []string
	if _, err := os.Stat(TomcatCatalinaSh); err != nil {
		missing = append(missing, TomcatCatalinaSh+" (apt package tomcat10)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		missing = append(missing, "java (apt package default-jre-headless, a dependency of tomcat10)")
	}
	return missing
}

func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // escapes " too; never fails on a Builder
	return b.String()
}

// twoFreePorts returns two distinct TCP ports free on ip at the time of the
// call.
func twoFreePorts(t testing.TB, ip string) (int, int) {
	t.Helper()
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("listen tcp %s:0: %v", ip, err)
		}
		defer ln.Close() // held until both are picked, so they differ
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1]
}

// webXMLHead and webXMLDefault are the start of both web.xml files below:
// the Jakarta EE 10 root element and the default (static file) servlet.
const (
	webXMLHead = `<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="https://jakarta.ee/xml/ns/jakartaee https://jakarta.ee/xml/ns/jakartaee/web-app_6_0.xsd"
         version="6.0">
`
	webXMLDefault = `  <servlet>
    <servlet-name>default</servlet-name>
    <servlet-class>org.apache.catalina.servlets.DefaultServlet</servlet-class>
    <init-param><param-name>listings</param-name><param-value>false</param-value></init-param>
    <load-on-startup>1</load-on-startup>
  </servlet>
`
)

// tomcatWebXML replaces the 4,700-line stock conf/web.xml: only the default
// servlet and Jasper's JspServlet, which every webapp inherits.
const tomcatWebXML = webXMLHead + webXMLDefault + `  <servlet>
    <servlet-name>jsp</servlet-name>
    <servlet-class>org.apache.jasper.servlet.JspServlet</servlet-class>
    <init-param><param-name>fork</param-name><param-value>false</param-value></init-param>
    <init-param><param-name>xpoweredBy</param-name><param-value>false</param-value></init-param>
    <load-on-startup>3</load-on-startup>
  </servlet>
  <servlet-mapping><servlet-name>default</servlet-name><url-pattern>/</url-pattern></servlet-mapping>
  <servlet-mapping><servlet-name>jsp</servlet-name><url-pattern>*.jsp</url-pattern></servlet-mapping>
  <session-config><session-timeout>30</session-timeout></session-config>
</web-app>
`

// tomcatStaticWebXML maps only the default (static file) servlet.
const tomcatStaticWebXML = webXMLHead + webXMLDefault + `  <servlet-mapping><servlet-name>default</servlet-name><url-pattern>/</url-pattern></servlet-mapping>
</web-app>
`

// tomcatContextXML turns off jar scanning for TLDs and fragments, which
// halves the start time.
const tomcatContextXML = `<?xml version="1.0" encoding="UTF-8"?>
<Context><JarScanner scanClassPath="false" scanManifest="false"/></Context>
`

const tomcatLogging = `handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = FINE
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
# For AJP protocol detail:  org.apache.coyote.ajp.level = FINE
`

// Echo is the JSON object /echo.jsp answers (see StartTomcat). Fields that
// the servlet API returns as null are nil pointers.
type Echo struct {
	Method        string            `json:"method"`
	RequestURI    string            `json:"requestURI"`
	QueryString   *string           `json:"queryString"`
	Protocol      string            `json:"protocol"`
	Scheme        string            `json:"scheme"`
	IsSecure      bool              `json:"isSecure"`
	ServerName    string            `json:"serverName"`
	ServerPort    int               `json:"serverPort"`
	RemoteAddr    string            `json:"remoteAddr"`
	RemoteHost    string            `json:"remoteHost"`
	RemotePort    int               `json:"remotePort"`
	LocalAddr     string            `json:"localAddr"`
	LocalPort     int               `json:"localPort"`
	RemoteUser    *string           `json:"remoteUser"`
	AuthType      *string           `json:"authType"`
	ContentType   *string           `json:"contentType"`
	ContentLength int64             `json:"contentLength"` // -1 when unknown (chunked)
	BodyLength    int64             `json:"bodyLength"`
	BodySha256    string            `json:"bodySha256"` // hex
	SessionID     *string           `json:"sessionId"`  // getRequestedSessionId()
	Headers       [][2]string       `json:"headers"`    // [name, value] pairs
	Attributes    map[string]string `json:"attributes"`
	Pad           *string           `json:"pad"` // only with ?pad=N
}

// ParseEcho decodes a body of /echo.jsp.
func ParseEcho(body []byte) (Echo, error) {
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil {
		return Echo{}, fmt.Errorf("echo.jsp answer is not its JSON (%v): %.300q", err, body)
	}
	return e, nil
}

// Header returns the values of the request header name (case-insensitive)
// in arrival order.
func (e Echo) Header(name string) []string {
	var vs []string
	for _, h := range e.Headers {
		if strings.EqualFold(h[0], name) {
			vs = append(vs, h[1])
		}
	}
	return vs
}
