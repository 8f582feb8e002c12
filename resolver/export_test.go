package resolver

// Cached returns the snapshot Lookup would read for name: the answer, with
// its Stale flag, and the error that goes with it (the reason Addrs is
// empty, or while stale the last refresh's error). It returns a zero Answer
// when name has no snapshot yet. It is the tests' window on state that
// Lookup does not show.
func Cached(r *Resolver, name string) (Answer, error) {
	e := (*r.names.Load())[name]
	if e == nil {
		return Answer{}, nil
	}
	s := e.snap.Load()
	if s == nil {
		return Answer{}, nil
	}
	return s.ans, s.err
}

// NumNames returns how many names are cached.
func NumNames(r *Resolver) int { return len(*r.names.Load()) }

// FixJitter makes every refresh of r land at 90% of its TTL, as it did
// before refreshes were spread, so that tests can name the moment. Call it
// before r is used.
func FixJitter(r *Resolver) { r.jitter = func() float64 { return 0.5 } }
