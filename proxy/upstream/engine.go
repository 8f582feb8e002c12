package upstream

// Engine selects whose protocol code serves a listener or talks to a
// backend: webtier's own (faster, leaner, younger) or the Go standard
// library's (net/http, fixed by every Go release). It exists so that an
// operator can turn webtier's own HTTP code off, by config or by the
// WEBTIER_ENGINE environment variable, when an advisory lands for it,
// without waiting for a rebuild.
type Engine string

// The engines.
const (
	// EngineWebtier is webtier's own code: the HTTP/1 and HTTP/2 servers
	// of proxy, and proxy/h1 for http:// targets.
	EngineWebtier Engine = "webtier"
	// EngineStd is the standard library's: net/http's HTTP/1 and HTTP/2
	// servers, and http.Transport for http:// targets.
	EngineStd Engine = "std"
)

// DefaultEngine is the engine of a listener or upstream that names none.
const DefaultEngine = EngineWebtier

// Std reports whether e is the standard library's engine. The zero value
// is DefaultEngine.
func (e Engine) Std() bool { return e == EngineStd }
