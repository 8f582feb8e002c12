package upstream

import "testing"

// A target an operator put in standby keeps out the addresses DNS adds to
// it later, and comes back whole; Status shows state, reason and totals.
func TestPool_targetStandby(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	startBackend(t, "b", "127.0.0.3", a.port())
	c := startBackend(t, "c", "127.0.0.4", 0)
	res := &pushResolver{}
	p, err := New(Options{Name: "app", Targets: []Target{
		{Scheme: "http", Host: "elb.test", Port: uint16(a.port())},
		{Scheme: "http", Host: "127.0.0.4", Port: uint16(c.port())},
	}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.test", "127.0.0.2")

	if !p.SetTargetStandby("ELB.test", true) {
		t.Fatal("SetTargetStandby: target not found")
	}
	if p.SetTargetStandby("other.test", true) {
		t.Error("SetTargetStandby found a target that is not configured")
	}
	res.push(t, "elb.test", "127.0.0.2", "127.0.0.3")
	for range 4 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "c" {
			t.Fatalf("with elb.test in standby answered by %q; want c", got)
		}
	}
	st := p.Status()
	tg := st.Targets[0]
	if !tg.Standby || len(tg.Addresses) != 2 {
		t.Fatalf("target status %+v; want in standby with 2 addresses", tg)
	}
	for _, addr := range tg.Addresses {
		if addr.State != "standby" || addr.Reason != reasonTargetStandby || addr.Total != 0 {
			t.Errorf("%+v; want standby by the operator, nothing sent (also the address DNS added later)", addr)
		}
	}
	if lit := st.Targets[1]; !lit.Literal || lit.Addresses[0].Total != 4 || lit.Addresses[0].Reason != reasonConfigured {
		t.Errorf("literal target %+v; want 4 sent", lit)
	}

	p.SetTargetStandby("elb.test", false)
	seen := map[string]bool{}
	for range 12 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		seen[body(t, resp)] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after the target came back, answered by %v; want a and b", seen)
	}
	if p.Status().Targets[0].Standby {
		t.Error("target still shown in standby")
	}
}

// SetBalance refuses a name that is no algorithm and changes nothing.
func TestPool_setBalance(t *testing.T) {
	p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "127.0.0.1", Port: 1}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetBalance("fastest"); err == nil {
		t.Error("SetBalance(fastest) accepted")
	}
	if got := p.Options().Balance; got != BalanceLeastConn {
		t.Errorf("balance %s after a refused change; want least_conn", got)
	}
	for _, b := range Balances {
		if err := p.SetBalance(b); err != nil || p.Status().Balance != b {
			t.Errorf("SetBalance(%s): %v, status says %s", b, err, p.Status().Balance)
		}
	}
}
