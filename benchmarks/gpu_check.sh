#!/usr/bin/env bash
# One-GPU check of the fast path (<= 8 minutes on one GPU), in three parts:
#   1. fp16 and bf16 sampling against fp32 through Restorer.restore: images/s at NFE 100 and the
#      max difference of the restorations, adm256 at 256 px (benchmarks/bench_sample.py);
#   2. train and sample steps of our UNet against guided-diffusion's, same weights, interleaved:
#      the reference's fp16 sampling (its convert_to_fp16) against our default, our training step
#      under DistributedDataParallel with nccl on one GPU, peak CUDA memory, max output difference
#      (benchmarks/bench_vs_reference.py --ddp --reference-precision fp16);
#   3. the same step comparison at 64 px (small preset and adm256) for the CPU table's shapes.
# Usage: benchmarks/gpu_check.sh [--device cuda|cuda:N|cpu] [--tiny]
#   --tiny: tiny preset at 32 px, NFE 2, one round: what CI runs with --device cpu (seconds).
# Output: the tables on stdout, JSON in ${OUT:-results/gpu_check}/.
set -euo pipefail
DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --device=*) DEVICE="${1#--device=}"; shift ;;
        --tiny) TINY=1; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (expected --device D, --tiny)" >&2; exit 2 ;;
    esac
done
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-$HERE/../.venv/bin/python}"
OUT_DIR="${OUT:-results/gpu_check}"
mkdir -p "$OUT_DIR"
REF_PRECISION=fp32
case "$DEVICE" in cuda*) REF_PRECISION=fp16 ;; esac

start=$(date +%s)
echo "== gpu_check on $DEVICE (tiny=$TINY) =="
if [ "$TINY" = 1 ]; then
    "$PY" "$HERE/bench_sample.py" --device "$DEVICE" --preset tiny --size 32 --batch 2 --nfe 2 --repeats 1
    "$PY" "$HERE/bench_vs_reference.py" --device "$DEVICE" --tiny --ddp \
        --reference-precision "$REF_PRECISION" --json "$OUT_DIR/steps_tiny.json"
else
    "$PY" "$HERE/bench_sample.py" --device "$DEVICE" --preset adm256 --size 256 --batch 8 --nfe 100 --repeats 2
    "$PY" "$HERE/bench_vs_reference.py" --device "$DEVICE" --configs adm256@256 --batch 8 --ddp \
        --reference-precision "$REF_PRECISION" --repeats 3 --json "$OUT_DIR/steps_adm256_256.json"
    "$PY" "$HERE/bench_vs_reference.py" --device "$DEVICE" --configs small,adm256@64 --ddp \
        --repeats 3 --json "$OUT_DIR/steps_64.json"
fi
echo "== gpu_check done in $(( $(date +%s) - start )) s; JSON in $OUT_DIR =="
