#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU and CuPy (what a user with a GPU runs
# to check an install, and what a development session with a lent device runs once):
#   1. builds and installs adla from this checkout (no build isolation: the machine's NumPy,
#      SciPy, Cython, meson and ninja; meson-python and pyproject-metadata from .whl/ if present),
#   2. runs the operator table on CuPy against the CPU (tests/test_gpu.py) and the GPU backend's
#      array rules (tests/test_gpu_backend_arrays.py),
#   3. times adla against CuPy, PyTorch and JAX on the GPU, writes docs/gpu-benchmarks.md with
#      the device's name, and prints the verdict on the targets.
# Usage, from anywhere: bash benchmarks/gpu_check.sh   (about 5-8 minutes on an H100/H200;
# ADLA_GPU_TEST_TIMEOUT and ADLA_GPU_BENCHMARK_BUDGET, in seconds, bound the two parts)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/adla-site .whl/*.whl
    export PYTHONPATH=/tmp/adla-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "=== build ($((SECONDS - start)) s)"
python3 -m pip install -q --no-build-isolation --no-deps .
echo "=== tests on the GPU ($((SECONDS - start)) s)"
tests=0
timeout "${ADLA_GPU_TEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider --maxfail=20 -rf \
    tests/test_gpu.py tests/test_gpu_backend_arrays.py 2>&1 | tail -n 40 || tests=$?
echo "=== benchmark ($((SECONDS - start)) s)"
# JAX would otherwise take most of the device's memory at its first call.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -m benchmarks --gpu --budget "${ADLA_GPU_BENCHMARK_BUDGET:-300}" --out docs/gpu-benchmarks.md
echo "=== done in $((SECONDS - start)) s; tests $([ "$tests" = 0 ] && echo passed || echo FAILED)"
exit "$tests"
