#!/usr/bin/env bash
# Stage one's GPU checks in one call, for a session that is lent a GPU machine (issue #5's GPU figures):
#   1. the gpu-marked tests (no host-device sync inside a pass or its host copy; CUDA maps equal CPU maps);
#   2. benchmarks/roofline.py: the pair pass against fair-esm's return_contacts and a bf16 GEMM, 650M architecture;
#   3. benchmarks/yeast_stage_one.py: `precompute` end to end on CUDA with --tokens-per-batch auto;
#   4. benchmarks/cache_write.py: how many pairs/s the cache writer stores with that machine's CPUs.
# Results: 7 files under OUT (the device tool brings back at most 8). Every model has RANDOM weights of a real
# ESM-2 architecture (no weights can be downloaded); speed does not depend on them.
#
# The lent machine has torch, h5py, numpy, click, rich and pytest, but not fair-esm: carry its wheel (pure Python).
# Once, here:   echo /.whl/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: -d .whl fair-esm==2.0.0
# On the machine (device tool, carry [".whl"]):   bash benchmarks/gpu_checks.sh "$OUT"
# A CPU smoke test of this script:   DEVICE=cpu ARCH=t6 N_PAIRS=8 TOKENS=1024 bash benchmarks/gpu_checks.sh /tmp/gpu_checks
set -uo pipefail
out=$(mkdir -p "${1:?usage: benchmarks/gpu_checks.sh OUT_DIR}" && cd "$1" && pwd) || exit 1
device=${DEVICE:-cuda}
arch=${ARCH:-t33}
n_pairs=${N_PAIRS:-256}
tokens=${TOKENS:-16384}
default_peak=989  # H100/H200 SXM dense bf16, datasheet; no datasheet figure for a CPU
[ "$device" = cpu ] && default_peak=0
peak=${PEAK_TFLOPS:-$default_peak}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
python3 -c "import torch, esm, h5py; print('torch', torch.__version__, '| cuda available:', torch.cuda.is_available(),
'|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" || exit 1
status=0
echo "== 1. gpu-marked tests"
python3 -m pytest -q -m gpu tests/test_runner.py -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.txt" || status=1
echo "== 2. roofline: $arch on $device, $n_pairs pairs, $tokens tokens per batch"
python3 -m benchmarks.roofline --arch "$arch" --device "$device" --n-pairs "$n_pairs" --tokens-per-batch "$tokens" \
  --peak-tflops "$peak" --json "$out/roofline.json" 2>&1 | tee "$out/roofline.txt" || status=1
echo "== 3. precompute end to end: $arch on $device, $((4 * n_pairs)) pairs, --tokens-per-batch auto"
python3 -m benchmarks.yeast_stage_one --arch "$arch" --device "$device" --n-pairs $((4 * n_pairs)) \
  --tokens-per-batch auto --json "$out/stage_one.json" 2>&1 | tee "$out/stage_one.txt" || status=1
echo "== 4. cache writer: HDF5's pipeline vs chunks compressed on a thread pool"
python3 -m benchmarks.cache_write --n-pairs 200 --json "$out/cache_write.json" 2>&1 | tee "$out/cache_write.txt" \
  || status=1
exit $status
