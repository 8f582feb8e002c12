<%@ page contentType="application/json; charset=UTF-8" pageEncoding="UTF-8" trimDirectiveWhitespaces="true" session="false" import="java.util.*,java.io.*,java.security.*,java.security.cert.X509Certificate" %>
<%--
  webtier e2e echo page (e2e/peer/testdata/echo.jsp, installed as /echo.jsp by
  peer.StartTomcat). Describes the request as one JSON object; see tomcat.go.
  Query parameters: status=NNN sets the status, pad=N appends a "pad" field of
  N 'x' bytes, cookies=N adds Set-Cookie c1=v1 ... cN=vN, session=1 creates an
  HttpSession (Set-Cookie JSESSIONID; getSession works despite session="false",
  which only removes the implicit session variable). Header X-Echo-Attrs: A,B
  names extra request attributes to report (AJP attributes are not listed by
  getAttributeNames, so they are looked up by name).
--%>
<%!
static String q(Object o) {
	if (o == null) return "null";
	String s = String.valueOf(o);
	StringBuilder b = new StringBuilder(s.length() + 2).append('"');
	for (int i = 0; i < s.length(); i++) {
		char c = s.charAt(i);
		if (c == '"' || c == '\\') b.append('\\').append(c);
		else if (c < 0x20 || c == 0x2028 || c == 0x2029) b.append(String.format("\\u%04x", (int) c));
		else b.append(c);
	}
	return b.append('"').toString();
}
static final String[] FIXED_ATTRS = {
	"jakarta.servlet.request.cipher_suite",
	"jakarta.servlet.request.key_size",
	"jakarta.servlet.request.ssl_session_id",
	"jakarta.servlet.request.X509Certificate",
	"org.apache.tomcat.util.net.secure_protocol_version",
	"JK_LB_ACTIVATION",
};
%>
<%
// The body first: getParameter must not consume a form-encoded body.
MessageDigest md = MessageDigest.getInstance("SHA-256");
InputStream in = request.getInputStream();
byte[] buf = new byte[65536];
long bodyLength = 0;
for (int n; (n = in.read(buf)) != -1; ) { md.update(buf, 0, n); bodyLength += n; }
StringBuilder sha = new StringBuilder(64);
for (byte x : md.digest()) sha.append(String.format("%02x", x & 0xff));

String p = request.getParameter("status");
if (p != null) response.setStatus(Integer.parseInt(p));
p = request.getParameter("cookies");
if (p != null) for (int i = 1, n = Integer.parseInt(p); i <= n; i++) response.addCookie(new jakarta.servlet.http.Cookie("c" + i, "v" + i));
if ("1".equals(request.getParameter("session"))) request.getSession(true);
p = request.getParameter("pad");
long pad = p == null ? -1 : Long.parseLong(p);

StringBuilder j = new StringBuilder(1024).append('{');
j.append("\"method\":").append(q(request.getMethod()));
j.append(",\"requestURI\":").append(q(request.getRequestURI()));
j.append(",\"queryString\":").append(q(request.getQueryString()));
j.append(",\"protocol\":").append(q(request.getProtocol()));
j.append(",\"scheme\":").append(q(request.getScheme()));
j.append(",\"isSecure\":").append(request.isSecure());
j.append(",\"serverName\":").append(q(request.getServerName()));
j.append(",\"serverPort\":").append(request.getServerPort());
j.append(",\"remoteAddr\":").append(q(request.getRemoteAddr()));
j.append(",\"remoteHost\":").append(q(request.getRemoteHost()));
j.append(",\"remotePort\":").append(request.getRemotePort());
j.append(",\"localAddr\":").append(q(request.getLocalAddr()));
j.append(",\"localPort\":").append(request.getLocalPort());
j.append(",\"remoteUser\":").append(q(request.getRemoteUser()));
j.append(",\"authType\":").append(q(request.getAuthType()));
j.append(",\"contentType\":").append(q(request.getContentType()));
j.append(",\"contentLength\":").append(request.getContentLengthLong());
j.append(",\"bodyLength\":").append(bodyLength);
j.append(",\"bodySha256\":").append(q(sha));
j.append(",\"sessionId\":").append(q(request.getRequestedSessionId()));
j.append(",\"headers\":[");
boolean first = true;
for (Enumeration<String> names = request.getHeaderNames(); names.hasMoreElements(); ) {
	String name = names.nextElement();
	for (Enumeration<String> vs = request.getHeaders(name); vs.hasMoreElements(); ) {
		j.append(first ? "" : ",").append('[').append(q(name)).append(',').append(q(vs.nextElement())).append(']');
		first = false;
	}
}
j.append("],\"attributes\":{");
List<String> attrs = new ArrayList<>(Arrays.asList(FIXED_ATTRS));
for (Enumeration<String> hs = request.getHeaders("X-Echo-Attrs"); hs.hasMoreElements(); )
	for (String a : hs.nextElement().split(",")) if (!a.trim().isEmpty() && !attrs.contains(a.trim())) attrs.add(a.trim());
first = true;
for (String a : attrs) {
	Object v = request.getAttribute(a);
	if (v == null) continue;
	if (v instanceof X509Certificate[]) {
		X509Certificate[] chain = (X509Certificate[]) v;
		v = chain.length == 0 ? "" : chain[0].getSubjectX500Principal().getName();
	}
	j.append(first ? "" : ",").append(q(a)).append(':').append(q(v));
	first = false;
}
j.append('}');
out.print(j);
if (pad >= 0) {
	out.print(",\"pad\":\"");
	char[] xs = new char[8192];
	Arrays.fill(xs, 'x');
	for (long left = pad; left > 0; left -= xs.length) out.write(xs, 0, (int) Math.min(left, xs.length));
	out.print('"');
}
out.print("}\n");
%>
