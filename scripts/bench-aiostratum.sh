#!/usr/bin/env bash
# fastproxy vs aiostratum-proxy 1.1 (PyPI), side by side, in the Equihash dialect: aiostratum's Bitcoin
# Stratum V1 classes are marked experimental by its authors and send no job to a new miner. aiostratum pins
# PyYAML 3.12, which no longer builds: it is installed with --no-deps, with aiojsonrpc2 1.0.0 and a current
# PyYAML, in a throwaway venv under a temporary directory, and its `yaml.load` call (which needs a Loader
# with PyYAML 6) is patched to `yaml.safe_load` in that venv only.
source "$(dirname "$0")/bench-lib.sh"
AIO=$(mktemp -d)
trap 'rm -rf "$AIO"' EXIT
python3 -m venv "$AIO/venv"
"$AIO/venv/bin/pip" install -q --no-deps aiostratum-proxy==1.1 aiojsonrpc2==1.0.0
"$AIO/venv/bin/pip" install -q PyYAML
APP=$("$AIO/venv/bin/python" -c 'import aiostratum_proxy.application as a; print(a.__file__)')
sed -i 's/yaml\.load(cf\.read())/yaml.safe_load(cf.read())/' "$APP"
AIO_PORT=${AIO_PORT:-13433}
POOL_PORT=${POOL_PORT:-13434}
cat > "$AIO/aio.yaml" <<YAML
proxies:
- name: bench
  max_workers: 65536
  worker_class: aiostratum_proxy.protocols.equihash.EquihashWorkerProtocol
  pool_class: aiostratum_proxy.protocols.equihash.EquihashPoolProtocol
  listen:
  - host: 127.0.0.1
    port: $AIO_PORT
  pools:
  - name: loadgen
    host: 127.0.0.1
    port: $POOL_PORT
    account_name: lg.proxy
    account_password: x
YAML
SPAWN="$AIO/venv/bin/aiostratum-proxy -q -c $AIO/aio.yaml"
AIO_ARGS=(--pool-listen "127.0.0.1:$POOL_PORT" --target "127.0.0.1:$AIO_PORT" --spawn "$SPAWN")
for n in 1000 10000; do
  run "equihash-shares-$n-fastproxy" --protocol equihash --mode shares --miners "$n" --start-proxy --duration 10
  run "equihash-shares-$n-aiostratum" --protocol equihash --mode shares --miners "$n" "${AIO_ARGS[@]}" \
    --duration 10 --timeout 300
done
run equihash-fanout-1000-fastproxy --protocol equihash --mode fanout --miners 1000 --start-proxy
run equihash-fanout-1000-aiostratum --protocol equihash --mode fanout --miners 1000 "${AIO_ARGS[@]}"
run equihash-direct-1000 --protocol equihash --mode direct --miners 1000 --duration 10
