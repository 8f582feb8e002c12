package compress

import "strings"

// Negotiate returns the coding of offered (in the server's order of
// preference) that the Accept-Encoding values accept with the highest
// q-value, the earlier one on a tie, or "" when none is acceptable. A
// coding the client does not name takes the q-value of "*", if given,
// else 0; "q=0" refuses. It allocates nothing.
func Negotiate(acceptEncoding []string, offered []string) string {
	best, bestQ := "", 0
	for _, enc := range offered {
		q := acceptQ(acceptEncoding, enc)
		if q > bestQ {
			best, bestQ = enc, q
		}
	}
	return best
}

// acceptQ is the q-value, in thousandths, that the Accept-Encoding values
// give to coding.
func acceptQ(values []string, coding string) int {
	star := -1
	for _, v := range values {
		for len(v) > 0 {
			var item string
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, ""
			}
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			switch {
			case strings.EqualFold(name, coding),
				coding == Gzip && strings.EqualFold(name, "x-gzip"): // RFC 9110 8.4.1.3
				return qValue(params)
			case name == "*":
				star = qValue(params)
			}
		}
	}
	if star < 0 {
		return 0
	}
	return star
}

// qValue parses ";q=0.5" (and any other parameters, ignored) into
// thousandths; no q is 1000 and a malformed one 0.
func qValue(params string) int {
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		k, v, _ := strings.Cut(p, "=")
		if strings.TrimSpace(k) != "q" && strings.TrimSpace(k) != "Q" {
			continue
		}
		return parseQ(strings.TrimSpace(v))
	}
	return 1000
}

// parseQ parses an RFC 9110 qvalue: "0", "0.5", "1", "1.000".
func parseQ(s string) int {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q
	}
	if s[1] != '.' {
		return 0
	}
	scale := 100
	for _, c := range s[2:] {
		if c < '0' || c > '9' {
			return 0
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0
	}
	return q
}
