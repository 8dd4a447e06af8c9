// Command go-pprof is the real-client half of test_go_pprof.sh: it profiles
// its own busy work with runtime/pprof (labels set with pprof.Do), writes the
// gzipped CPU profile to a file and POSTs the same bytes to Strata's
// Pyroscope /ingest endpoint, as pyroscope-go does. Standard library only.
//
// Usage: go-pprof BASE_URL SPAN_ID OUT_FILE
//
// It prints one line, "status=<HTTP status> bytes=<n>", and exits 0 only
// when the server answered 200.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"time"
)

var sink uint64

// strataBusyLoop burns CPU until the deadline; the test looks for it by name.
func strataBusyLoop(until time.Time) {
	x := uint64(1)
	for time.Now().Before(until) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
			x ^= x >> 33
		}
	}
	sink += x
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go-pprof BASE_URL SPAN_ID OUT_FILE")
		os.Exit(2)
	}
	base, spanID, out := os.Args[1], os.Args[2], os.Args[3]

	var prof bytes.Buffer
	from := time.Now()
	if err := pprof.StartCPUProfile(&prof); err != nil {
		fmt.Fprintln(os.Stderr, "StartCPUProfile:", err)
		os.Exit(1)
	}
	labels := pprof.Labels("span_id", spanID, "endpoint", "/checkout")
	pprof.Do(context.Background(), labels, func(context.Context) {
		strataBusyLoop(time.Now().Add(2 * time.Second))
	})
	pprof.StopCPUProfile()
	until := time.Now()

	if err := os.WriteFile(out, prof.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(1)
	}

	q := url.Values{}
	q.Set("format", "pprof")
	q.Set("name", "go-app{env=test}")
	q.Set("from", fmt.Sprint(from.Unix()))
	q.Set("until", fmt.Sprint(until.Unix()+1))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(base+"/ingest?"+q.Encode(), "application/octet-stream",
		bytes.NewReader(prof.Bytes()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "POST:", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("status=%d bytes=%d body=%q\n", resp.StatusCode, prof.Len(), body)
	if resp.StatusCode != http.StatusOK {
		os.Exit(1)
	}
}
