module berth.dev/testground/pause

go 1.26.0
