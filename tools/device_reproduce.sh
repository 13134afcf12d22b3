#!/usr/bin/env bash
# Issue 14 on a lent GPU: `bench reproduce` with trainer.device=cuda, many cells at once on the one GPU (separate
# processes, one CPU thread each), within one device call. The new records come back in $OUT/new_records.jsonl;
# appending them to results/records.jsonl here is the whole merge (one record per line, union-merged), then
# `bench table N --aggregate-only` re-renders each table and `bench report` the summary.
#
#   here, once:   ../shared/tools/device-stage mtop/full multiatis   (about 16 MB with the wheels; for Table 7 add
#                 imdb hyperpartisan, about 43 MB in all, and TABLES=6,1,2,3,4,5,7; .device-stage is git-excluded)
#                 git rev-parse HEAD > .device-stage/commit; git status --porcelain --untracked-files=no -- . ':(exclude)results' | grep -q . && echo 1 > .device-stage/dirty || echo 0 > .device-stage/dirty
#   device call:  run(command="bash tools/device_reproduce.sh", carry=[".device-stage"], timeout_s=590)
#   afterwards:   cat <files_at>/new_records.jsonl >> results/records.jsonl; for t in 6 1 2 3 4 5; do
#                 bench table $t --aggregate-only; done; bench report; commit with the code that ran
#   CPU check:    DEVICE=cpu FRESH=1 BUDGET=cpu TABLES=3 JOBS=2 HOURS=0.04 OUT=/tmp/device-reproduce bash tools/device_reproduce.sh
#                 (FRESH=1 starts from no records, so that cells run: a check of the pipeline, not results)
#
# Knobs (environment): BUDGET (paper), TABLES (6,1,2,3,4,5: the issue's order; Table 7's IMDB and Hyperpartisan
# are not staged), SEEDS (empty: every planned seed, seed 0 first), JOBS (14: cells at once), HOURS (0.14: the
# time budget; cells still running then are stopped and lost with the machine), DEVICE (cuda).
# The GPU image lacks hydra-core, omegaconf and datasets: the staged wheels go to /tmp/site, the data is found
# through BENCH_DATA_DIR. The device copy has no .git: the commit written here travels in .device-stage/commit
# and each record's provenance takes it from BENCH_COMMIT (core/provenance.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for what comes back (the device call has it)}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-paper}
TABLES=${TABLES:-6,1,2,3,4,5}
SEEDS=${SEEDS:-}
JOBS=${JOBS:-14}
HOURS=${HOURS:-0.14}
source tools/device_env.sh  # staged wheels, data and commit (or this checkout's environment)
work=$(mktemp -d)
mkdir -p "$work/results" "$work/outputs"
if [ "${FRESH:-0}" != 1 ]; then
  cp results/records.jsonl "$work/results/records.jsonl"
fi
before=0
[ -f "$work/results/records.jsonl" ] && before=$(wc -l < "$work/results/records.jsonl")
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
status=0
python3 -m pnlp_bench.cli reproduce --budget "$BUDGET" --tables "$TABLES" ${SEEDS:+--seeds "$SEEDS"} --jobs "$JOBS" \
  --threads 1 --hours "$HOURS" --results-dir "$work/results" --output-root "$work/outputs" \
  trainer.device="$DEVICE" 2>&1 | tee "$OUT/reproduce.log" || status=$?
# the records this call added, and the last lines of every cell's log (what a stopped or failed cell got to)
tail -n +$((before + 1)) "$work/results/records.jsonl" > "$OUT/new_records.jsonl" 2>/dev/null || : > "$OUT/new_records.jsonl"
for log in "$work"/outputs/reproduce/*.log; do
  [ -e "$log" ] && { echo "== $(basename "$log")"; tail -n 5 "$log"; } >> "$OUT/cell_logs.txt"
done
echo "device_reproduce: $(wc -l < "$OUT/new_records.jsonl") new records in $OUT/new_records.jsonl (reproduce exit $status)"
exit "$status"
