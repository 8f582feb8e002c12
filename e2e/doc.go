// Package e2e holds webtier's end-to-end tests: they build the real binary
// and run it against real peers (BIND 9 changed with nsupdate, backends on
// loopback addresses, network namespaces with nftables faults), each test
// owning its peers and stopping them by PID. e2e/peer starts the peers;
// e2e/bench compares webtier with other proxies under load.
package e2e
