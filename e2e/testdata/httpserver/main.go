// Command httpserver is the e2e tests' stand-in for Aurora's
// http_example.py: `httpserver [-health BODY] HTTP_PORT HEALTH_PORT`.
// Every GET on HTTP_PORT answers "Hello!"; GET /health on HEALTH_PORT
// answers BODY ("ok" unless -health says otherwise, so that a health check
// can be made to fail), and the lifecycle POSTs (/quitquitquit,
// /abortabortabort) are acknowledged.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	health := flag.String("health", "ok", "body of GET /health")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpserver [-health BODY] HTTP_PORT HEALTH_PORT")
		os.Exit(2)
	}
	httpMux := http.NewServeMux()
	httpMux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "Hello!\n") })
	healthMux := http.NewServeMux()
	healthMux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, *health) })
	healthMux.HandleFunc("POST /quitquitquit", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	healthMux.HandleFunc("POST /abortabortabort", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	go func() { log.Fatal(http.ListenAndServe(":"+flag.Arg(0), httpMux)) }()
	log.Printf("serving on %s, health %q on %s", flag.Arg(0), *health, flag.Arg(1))
	log.Fatal(http.ListenAndServe(":"+flag.Arg(1), healthMux))
}
