package peer

import "os"

// EngineEnv is webtier's WEBTIER_ENGINE: "std" switches every listener and
// upstream of every webtier the suite starts to the standard library's
// protocol code (net/http's servers and Transport). The webtier processes
// StartWebtier starts inherit it with the rest of the test's environment,
// so `WEBTIER_ENGINE=std go test ./e2e/` runs the suite against that
// engine; e2e/test.sh does so after the run against the default one.
const EngineEnv = "WEBTIER_ENGINE"

// StdEngine reports whether the suite runs webtier with engine std. Tests
// that assert what only one engine does (the own HTTP/1 server's memory
// per idle connection, a status one server answers and the other does
// not) branch on it and say why.
func StdEngine() bool { return os.Getenv(EngineEnv) == "std" }
