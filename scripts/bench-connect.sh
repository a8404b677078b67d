#!/usr/bin/env bash
# 65,536 miners connect, subscribe and authorize through ONE upstream on one proxy thread: time to admit
# all, proxy RSS. Where the open-file limit cannot hold 65,536 sockets per process (the load generator and
# the proxy each hold one per miner), --fit-fd-limit runs the largest number that fits and says so.
source "$(dirname "$0")/bench-lib.sh"
run connect-65536 --mode connect --miners 65536 --fit-fd-limit --start-proxy --threads 1
