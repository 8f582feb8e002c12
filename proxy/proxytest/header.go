package proxytest

import "net/http"

// BrowserHeader returns the header fields of a browser's GET as a backend
// client sees them behind the proxy (cookies, the X-Forwarded-* fields):
// the request the backend clients' benchmarks (h1, AJP) encode, so that
// their figures compare.
func BrowserHeader() http.Header {
	return http.Header{
		"Accept":            {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding":   {"gzip, deflate, br"},
		"Accept-Language":   {"en-US,en;q=0.5"},
		"Cookie":            {"JSESSIONID=0123456789ABCDEF0123456789ABCDEF.node1; theme=dark"},
		"Referer":           {"https://www.example.com/app/list"},
		"User-Agent":        {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		"X-Forwarded-For":   {"192.0.2.7"},
		"X-Forwarded-Host":  {"www.example.com"},
		"X-Forwarded-Proto": {"https"},
	}
}
