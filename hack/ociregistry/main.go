// ociregistry serves go-containerregistry's in-memory registry (pkg/registry) with the OCI 1.1
// referrers API (GET /v2/<name>/referrers/<digest>) switched on. `crane registry serve` builds the
// same registry but leaves referrers off (it calls registry.New without WithReferrersSupport, in
// v0.21 and v0.22 alike), and Debian's docker-registry (distribution 2.8) has no referrers API at
// all, so this tiny wrapper is what lets the tests see discovery use the real endpoint.
//
// Plain HTTP on loopback only; the address it listens on is printed as the first line of stdout
// (pass 127.0.0.1:0 for a free port). Every request is logged to stderr as "METHOD URL [status]".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	address := flag.String("address", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*address)
	if err != nil {
		log.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("%s is not a loopback address: this registry has no TLS and no authentication", host)
	}
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(listener.Addr().String())
	handler := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(os.Stderr, "", log.LstdFlags)))
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.Serve(listener))
}
