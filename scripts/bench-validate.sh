#!/usr/bin/env bash
# The cost of local validation end to end: 1,000 miners at saturation through fastproxy with
# `validate_shares` off and on, alternated twice (the pool's difficulty lets every share meet its target, so
# each share is hashed and still forwarded). Then the criterion benches of validation and of the kernel's
# floor (socket calls a share and a notify cannot avoid). Compare proxy CPU per share between the runs.
source "$(dirname "$0")/bench-lib.sh"
for i in 1 2; do
  run "validate-off-$i" --mode shares --miners 1000 --start-proxy --threads 1 --duration 5 --warmup 1
  run "validate-on-$i" --mode shares --miners 1000 --start-proxy --threads 1 --duration 5 --warmup 1 --validate
done
cargo bench --bench share_path -- validate
cargo bench --bench kernel_floor
