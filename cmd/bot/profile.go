package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"

	"github.com/rs/zerolog"
)

// profileDirEnv names the directory where `bot serve` writes pprof profiles of its own run. It is
// for the burst benchmarks (issue 9), which run the bot as a process of its own and cannot profile
// it with go test's -cpuprofile: they pass it on from their environment. Unset (always, in a
// deploy) nothing is profiled. It is read here, not by loadConfig: it is not a setting of the
// bot's behaviour, and nothing but a profiling run sets it.
const profileDirEnv = "BOT_PROFILE_DIR"

// startProfiles starts a CPU profile of the process into dir (cpu-PID.pprof) when dir is set, and
// returns what stops it and writes the heap profile (heap-PID.pprof: in use at the stop and
// allocated since the start, `go tool pprof -sample_index=alloc_space`). A profile that cannot be
// written is logged, never fatal.
func startProfiles(dir string, log zerolog.Logger) (stop func()) {
	if dir == "" {
		return func() {}
	}
	name := func(kind string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", kind, os.Getpid())) }
	cpu, err := os.Create(name("cpu"))
	if err != nil {
		log.Error().Err(err).Msg("cpu profile")
	} else if err := pprof.StartCPUProfile(cpu); err != nil {
		log.Error().Err(err).Msg("cpu profile")
		_ = cpu.Close()
		cpu = nil
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			_ = cpu.Close()
		}
		heap, err := os.Create(name("heap"))
		if err != nil {
			log.Error().Err(err).Msg("heap profile")
			return
		}
		defer heap.Close()
		runtime.GC() // the in-use figures are then up to date
		if err := pprof.WriteHeapProfile(heap); err != nil {
			log.Error().Err(err).Msg("heap profile")
		}
	}
}
