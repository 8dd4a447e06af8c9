// Command pprof-roundtrip is the profile maker of test_pprof_roundtrip.sh: it
// writes a gzipped CPU profile (runtime/pprof) of work chosen to exercise a
// flame-graph merge: direct recursion (fib), mutual recursion (even/odd),
// a function the compiler inlines (mix, so locations carry several lines),
// and library code (sort). Standard library only; no network.
//
// Usage: pprof-roundtrip OUT_FILE
package main

import (
	"fmt"
	"math/rand"
	"os"
	"runtime/pprof"
	"sort"
	"time"
)

var sink uint64

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func even(n int) bool {
	if n == 0 {
		return true
	}
	return odd(n - 1)
}

func odd(n int) bool {
	if n == 0 {
		return false
	}
	return even(n - 1)
}

// mix is small enough to be inlined into hashLoop.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	return x
}

func hashLoop(n int) uint64 {
	x := uint64(1)
	for i := 0; i < n; i++ {
		x = mix(x + uint64(i))
	}
	return x
}

func sortWork(r *rand.Rand) {
	v := make([]int, 20000)
	for i := range v {
		v[i] = r.Int()
	}
	sort.Ints(v)
	sink += uint64(v[0])
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pprof-roundtrip OUT_FILE")
		os.Exit(2)
	}
	f, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "StartCPUProfile:", err)
		os.Exit(1)
	}
	r := rand.New(rand.NewSource(1))
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); {
		sink += uint64(fib(27))
		for i := 0; i < 20000; i++ {
			if even(41) { // shallower than the profiler's 64-frame stacks
				sink++
			}
		}
		sink += hashLoop(200000)
		sortWork(r)
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
}
