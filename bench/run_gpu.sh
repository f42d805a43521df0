#!/usr/bin/env bash
# The GPU checks of one session, stage by stage, on a machine whose python3 already has torch + triton:
#   bash bench/run_gpu.sh STAGE...
# STAGE: info | losses-gpu (the gpu-marked loss tests) | bench-infonce | bench-sinkhorn | losses (every loss test,
# Triton compiled) | data (DALI GPU test + benchmark) | encoders (DeepSpeed bf16 train-step benchmark).
# Each stage has a time limit (SIGINT, so pytest still writes its summary, junit and benchmark JSON).
# The packages are used from their source trees (PYTHONPATH), so the machine's own torch is tested.
# Optional: WHEELS=dir of extra wheels (DALI, DeepSpeed's pydantic...) installed into /tmp/site first,
# DEEPSPEED_TGZ=a tarball of the deepspeed package (it ships as an sdist only), SITE_TXZ=an xz tarball of
# installed packages (e.g. DALI and its dependencies, unpacked from their wheels), all into /tmp/site.
# Results (pytest-benchmark JSON, junit XML, logs) go to $OUT (default bench/results/raw).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench/results/raw}
mkdir -p "$OUT" /tmp/site
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD:$PWD/packages/losses/src:$PWD/packages/data/src:$PWD/packages/encoders/src"
PYTHONPATH="$PYTHONPATH:$PWD/packages/eval/src:/tmp/site"
PY=${PYTHON:-python3}

if [[ -n "${WHEELS:-}" ]]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
fi
if [[ -n "${SITE_TXZ:-}" ]]; then
  tar -xJf "$SITE_TXZ" -C /tmp/site
fi
if [[ -n "${DEEPSPEED_TGZ:-}" ]]; then
  tar -xzf "$DEEPSPEED_TGZ" -C /tmp/site
fi

pytest_to() {  # pytest_to NAME TIMEOUT ARGS...: junit + log under $OUT, the tail on stdout
  local name=$1 limit=$2
  shift 2
  timeout -s INT -k 30 "$limit" $PY -m pytest -q -p no:cacheprovider --junitxml="$OUT/$name.xml" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name: exit $?"
  tail -n 25 "$OUT/$name.log"
}

for stage in "$@"; do
  case $stage in
    info)
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
      $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
      date -u +%FT%TZ | tee -a "$OUT/gpu.txt" ;;
    losses-gpu)
      pytest_to losses-gpu-tests 180 tests/losses -m gpu ;;
    bench-infonce)  # torch.compile of the materialised reference is left to the Sinkhorn suite (its target)
      pytest_to bench-infonce 120 bench/bench_infonce.py -m gpu -k "not reference_compiled" --benchmark-only \
        --benchmark-json="$OUT/bench-infonce.json" ;;
    bench-sinkhorn)
      pytest_to bench-sinkhorn 150 bench/bench_sinkhorn.py -m gpu --benchmark-only \
        --benchmark-json="$OUT/bench-sinkhorn.json" ;;
    losses)  # every loss test on the real device, not only the gpu-marked ones
      pytest_to losses-tests "${LOSSES_LIMIT:-300}" tests/losses --ignore=tests/losses/test_kernel_report.py ;;
    data)  # agreement table (GPU decoder with/without exact chroma upsampling), GPU tests, GPU benchmark
      timeout -s INT 120 $PY bench/agreement_dali.py --devices gpu --out "$OUT/agreement-dali.json" \
        >"$OUT/agreement-dali.log" 2>&1
      echo "== agreement-dali: exit $?"
      grep "^kind=" "$OUT/agreement-dali.log"
      pytest_to data-tests 120 tests/data/test_equivalence.py tests/data/test_dali_gpu.py \
        tests/data/test_torch_photometric.py -m gpu
      $PY bench/junit_table.py "$OUT/data-tests.xml"
      for recipe in simclr swav; do  # one JSON per recipe: a stage cut by its limit keeps the finished ones
        pytest_to "bench-data-$recipe" "${DATA_LIMIT:-240}" bench/bench_data.py -m gpu -k "$recipe and ${DATA_K:-exact}" \
          --benchmark-only --benchmark-json="$OUT/bench-data-$recipe.json"
      done ;;
    encoders)
      pytest_to bench-encoders 100 bench/bench_encoders.py -m gpu -k "${ENCODERS_K:-simclr or swav}" --benchmark-only \
        --benchmark-json="$OUT/bench-encoders.json" ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
