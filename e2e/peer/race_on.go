//go:build race

package peer

// raceEnabled reports whether this test binary was built with -race; Build
// then builds webtier with -race too.
const raceEnabled = true
