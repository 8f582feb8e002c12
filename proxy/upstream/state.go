package upstream

import "fmt"

// State is the condition of one backend address, with names an operator
// reads in logs, metrics and status pages. Only StateRunning and
// StateRecovering take new requests (outside panic mode).
type State uint32

const (
	// StateRunning takes requests at its full weight.
	StateRunning State = iota
	// StateSuspect failed once (a connect or a health check): it takes no
	// new request and is re-probed at once; enough further failures eject
	// it, one success makes it running again.
	StateSuspect
	// StateEjected failed FailuresToEject (or the health check's Fall)
	// times in a row. It is re-probed after a jittered exponential backoff,
	// and only while the current DNS answer still contains it.
	StateEjected
	// StateRecovering is a new or restored address ramping up its share of
	// requests over the slow-start window.
	StateRecovering
	// StateDraining left the DNS answer: no new request, in-flight requests
	// finish, connections close.
	StateDraining
	// StateStandby was disabled by the operator.
	StateStandby
)

var stateNames = [...]string{"running", "suspect", "ejected", "recovering", "draining", "standby"}

// String returns the state's name as logged: "running", "suspect", ...
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint32(s))
}

// takesRequests reports whether s may get new requests outside panic mode.
func (s State) takesRequests() bool { return s == StateRunning || s == StateRecovering }
