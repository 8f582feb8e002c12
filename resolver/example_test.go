package resolver_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

func ExampleResolver_Lookup() {
	dns, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer dns.Close()
	dns.SetCNAME("www.example.test", "elb.example.test", 300)
	dns.SetA("elb.example.test", 60, netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.10"))

	r, err := resolver.New(resolver.Options{Nameservers: []string{dns.Addr()}})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	// The first Lookup waits for DNS; later ones read the cache, which is
	// refreshed in the background before the TTL (60 s here) runs out.
	addrs, err := r.Lookup(context.Background(), "www.example.test")
	fmt.Println(addrs, err)
	// Output: [192.0.2.10 192.0.2.20] <nil>
}

func ExampleResolver_Subscribe() {
	dns, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer dns.Close()
	dns.SetA("elb.example.test", 60, netip.MustParseAddr("192.0.2.10"))

	r, err := resolver.New(resolver.Options{Nameservers: []string{dns.Addr()}})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	changed := make(chan resolver.Answer)
	unsubscribe := r.Subscribe("elb.example.test", func(a resolver.Answer) { changed <- a })
	defer unsubscribe()
	a := <-changed
	fmt.Println(a.Name, a.Addrs, a.TTL)

	// The ELB moves: a connect failure would make the proxy ask for a
	// prompt refresh instead of waiting for the TTL.
	dns.SetA("elb.example.test", 60, netip.MustParseAddr("192.0.2.99"))
	r.RefreshNow("elb.example.test")
	a = <-changed
	fmt.Println(a.Name, a.Addrs, a.TTL)
	// Output:
	// elb.example.test [192.0.2.10] 1m0s
	// elb.example.test [192.0.2.99] 1m0s
}
