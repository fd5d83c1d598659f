// The real node's pause image: the process that holds a pod's namespaces. registry.k8s.io is out of reach here, so
// the ground builds its own: wait for SIGTERM or SIGINT, reap children (it may be PID 1 of a shared PID namespace),
// and exit.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
