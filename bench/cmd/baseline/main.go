// Command baseline serves the bare-fasthttp baseline that Podium's engine is compared
// against: POST /v1/rank answers a precomputed top-20 body of the engine's response shape.
//
// Usage:
//
//	go run ./bench/cmd/baseline -addr 127.0.0.1:8090
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/podium-rank/podium/bench/loadgen"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()

	bound, stop, err := loadgen.StartServer(*addr, loadgen.BaselineHandler)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "baseline: serving POST http://%s%s\n", bound, loadgen.BaselinePath)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := stop(); err != nil {
		log.Fatal(err)
	}
}
