#!/usr/bin/env bash
# Every GPU figure of the CPU-speed issue in one device call: `bench speed device=cuda compile=true` (training,
# featurization and latency against the dense reference; the H100 targets) and `bench speed length
# profile=gpu device=cuda` (BiGS against SDPA up to 16K tokens), written to $OUT/speed.* and $OUT/bigs_length.*
# (copy them to results/ after the call, then commit them with the code they ran).
#
#   here, once:   ../shared/tools/device-stage multiatis imdb vocab   (about 30 MB with the wheels, under the 64 MiB that travel)
#   device call:  run(command="bash tools/device_speed.sh", carry=[".device-stage"], timeout_s=560)
#   CPU check:    DEVICE=cpu QUICK=1 OUT=/tmp/device-check bash tools/device_speed.sh   (tiny profile, < 3 min)
#
# The device image lacks hydra-core, omegaconf and datasets: the staged wheels go to /tmp/site, the staged data
# is found through BENCH_DATA_DIR (--quick goes first: the options parser takes no flag after the overrides). Each command's log goes to $OUT too, so a run stopped at its limit still
# says how far it got.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the figures (the device call has it)}
DEVICE=${DEVICE:-cuda}
source tools/device_env.sh
if [ "${QUICK:-0}" = 1 ]; then
  speed=(--quick presets=[base] datasets=[multiatis] latency_presets=[base])
  length=(--quick)
else
  speed=(compile=true)
  length=(profile=gpu)
fi
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -m pnlp_bench.cli speed "${speed[@]}" device="$DEVICE" output="$OUT/speed" quiet=true 2>&1 | tee "$OUT/speed.log"
python3 -m pnlp_bench.cli speed length "${length[@]}" device="$DEVICE" output="$OUT/bigs_length" quiet=true 2>&1 | tee "$OUT/bigs_length.log"
ls -l "$OUT"
