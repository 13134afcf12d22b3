# Sourced by the device scripts (tools/device_*.sh) from the checkout's root: on the GPU machine the staged
# wheels (hydra-core, omegaconf, datasets, ...: its image lacks them) go to /tmp/site and the staged data is found
# through BENCH_DATA_DIR; the commit the sending checkout wrote travels into each record's provenance
# (core/provenance.py). Without .device-stage (a CPU check here) the checkout's own environment is used.
mkdir -p "$OUT"
if [ -d .device-stage/wheels ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .device-stage/wheels/*.whl
  export PYTHONPATH=/tmp/site:$PWD BENCH_DATA_DIR=$PWD/.device-stage/data
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -f .device-stage/commit ]; then
  export BENCH_COMMIT=$(cat .device-stage/commit) BENCH_DIRTY=$(cat .device-stage/dirty 2>/dev/null || echo 1)
fi
export PYTHONUNBUFFERED=1
