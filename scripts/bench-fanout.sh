#!/usr/bin/env bash
# Fan-out: the pool sends 10 notifies; time from the pool's send to each of 65,536 miners' receipt (the
# largest number the open-file limit allows, with --fit-fd-limit).
source "$(dirname "$0")/bench-lib.sh"
run fanout-65536 --mode fanout --miners 65536 --fit-fd-limit --start-proxy --threads 1 --notifies 10
