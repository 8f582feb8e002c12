package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/webtier/webtier/proxy/proxytest"
	"github.com/webtier/webtier/proxy/upstream"
)

func TestUpstreamTLSAndProtocol(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewNamedCA(t, dir, "internal")
	cert, key := ca.IssueFiles(t, "client", true, "webtier")
	_, otherKey := ca.IssueFiles(t, "other", true, "other")
	valid := []struct {
		name, up string
		want     upstream.TLSOptions
		protocol upstream.Protocol
	}{
		{"defaults", "    targets: [https://app.internal]\n", upstream.TLSOptions{}, upstream.ProtocolAuto},
		{"all keys", "    targets: [https://app.internal]\n    protocol: h2\n    tls: {ca_file: " + ca.File + ", server_name: app.internal, cert_file: " + cert + ", key_file: " + key + "}\n",
			upstream.TLSOptions{CAFile: ca.File, ServerName: "app.internal", CertFile: cert, KeyFile: key}, upstream.ProtocolH2},
		{"relative path", "    targets: [https://app.internal]\n    tls: {ca_file: " + filepath.Base(ca.File) + "}\n",
			upstream.TLSOptions{CAFile: ca.File}, upstream.ProtocolAuto},
		{"insecure", "    targets: [https://app.internal]\n    tls: {insecure_skip_verify: true}\n",
			upstream.TLSOptions{InsecureSkipVerify: true}, upstream.ProtocolAuto},
		{"h2c", "    targets: [http://grpc.internal:50051]\n    protocol: h2c\n", upstream.TLSOptions{}, upstream.ProtocolH2C},
		{"http1", "    targets: [https://app.internal]\n    protocol: http1\n", upstream.TLSOptions{}, upstream.ProtocolHTTP1},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "webtier.yaml"), []byte(ajpConfig(tt.up)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			u := cfg.Proxy.Upstreams[0]
			var got upstream.TLSOptions
			if u.TLS != nil {
				got = *u.TLS
			}
			if got != tt.want || u.Protocol != tt.protocol {
				t.Fatalf("TLS %+v, protocol %q; want %+v, %q", got, u.Protocol, tt.want, tt.protocol)
			}
		})
	}
	invalid := []struct{ name, up, want string }{
		{"tls on http targets", "    targets: [http://app.internal]\n    tls: {ca_file: " + ca.File + "}\n", "webtier.yaml:6: upstreams.app.tls: is only read for https:// targets"},
		{"missing ca_file", "    targets: [https://app.internal]\n    tls: {ca_file: nothere.pem}\n", `tls.ca_file: cannot read "` + filepath.Join(dir, "nothere.pem")},
		{"ca_file not PEM", "    targets: [https://app.internal]\n    tls: {ca_file: " + key + "}\n", "holds no PEM certificate"},
		{"cert without key", "    targets: [https://app.internal]\n    tls: {cert_file: " + cert + "}\n", "cert_file and key_file go together"},
		{"key of another certificate", "    targets: [https://app.internal]\n    tls: {cert_file: " + cert + ", key_file: " + otherKey + "}\n", "do not load together"},
		{"server_name not a name", "    targets: [https://app.internal]\n    tls: {server_name: \"10.0.0.1:443\"}\n", "server_name: \"10.0.0.1:443\" is not a host name"},
		{"unknown protocol", "    targets: [https://app.internal]\n    protocol: http2\n", `protocol: "http2" is not a protocol; write auto`},
		{"h2 on http", "    targets: [http://app.internal]\n    protocol: h2\n", "write h2c for cleartext HTTP/2"},
		{"h2c on https", "    targets: [https://app.internal]\n    protocol: h2c\n", "write h2 (or auto)"},
		{"protocol on ajp", "    targets: [ajp://tomcat]\n    ajp: {secret: s}\n    protocol: h2c\n", "protocol: is only read for http:// and https:// targets"},
		{"unknown tls key", "    targets: [https://app.internal]\n    tls: {ca: x}\n", "ca"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "webtier.yaml"), []byte(ajpConfig(tt.up)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %v; want one saying %q", err, tt.want)
			}
		})
	}
}
