#!/usr/bin/env bash
# Shares through fastproxy (one thread): 1,000 and 10,000 miners, each keeping one share in flight
# (saturation: shares/s and proxy CPU per share), then 1,000 miners paced at 10,000 shares/s in all (latency
# below saturation). Compare with bench-direct.sh, the load generator's own ceiling.
source "$(dirname "$0")/bench-lib.sh"
run shares-1000 --mode shares --miners 1000 --start-proxy --threads 1 --duration 10
run shares-10000 --mode shares --miners 10000 --start-proxy --threads 1 --duration 10
run shares-1000-paced --mode shares --miners 1000 --start-proxy --threads 1 --duration 10 --rate 10000
