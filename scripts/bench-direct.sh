#!/usr/bin/env bash
# The load generator's own ceiling: miners straight to its pool (no proxy), connect + shares + fan-out.
# Direct mode holds two sockets per miner in one process, so 10,000 miners may be cut to what fits.
source "$(dirname "$0")/bench-lib.sh"
run direct-1000 --mode direct --miners 1000 --duration 10 --notifies 10
run direct-1000-paced --mode direct --miners 1000 --duration 10 --rate 10000 --notifies 3
run direct-10000 --mode direct --miners 10000 --fit-fd-limit --duration 10 --notifies 10
