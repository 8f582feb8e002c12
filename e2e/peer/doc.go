// Package peer starts the real peers that webtier's end-to-end tests run
// against, and the webtier binary itself.
//
// Peers are real programs or real sockets, never mocks:
//
//   - BIND 9 (named), authoritative for one zone, changed with the real
//     nsupdate binary the way Route 53 changes an ELB's record (StartBIND);
//   - HTTP backends in this process on loopback addresses (StartBackend,
//     StartBackends);
//   - a raw TCP backend that records the exact bytes of every connection,
//     for the attack tests (StartRawBackend);
//   - pebble, an ACME server validating for real with pebble-challtestsrv
//     as its DNS (StartPebble);
//   - the webtier binary built from ./cmd/webtier (Build, StartWebtier).
//
// Every helper takes a testing.TB, picks free ports per run, waits for
// readiness by talking the peer's protocol under a bounded deadline, and
// stops what it started by PID in t.Cleanup (SIGTERM, then SIGKILL after a
// bound). Nothing is ever stopped by process name: other jobs on the same
// machine run the same programs.
//
// External tools are checked with RequireTools: without them a test skips,
// unless WEBTIER_E2E_REQUIRE=1 (set by e2e/test.sh, hence CI), where it fails.
//
// Packages that call Build should use Main from TestMain, which removes the
// built binary and checks for leaked goroutines:
//
//	func TestMain(m *testing.M) { peer.Main(m) }
package peer
