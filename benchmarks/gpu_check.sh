#!/usr/bin/env bash
# The GPU check, in one go (under 8 minutes on one GPU; never part of CI):
#   1. the CUDA training tests (tests/training/test_cuda.py: bf16 autocast against fp32, two
#      processes over NCCL where there are two GPUs, a killed run resuming from its checkpoint);
#   2. benchmarks/train_throughput.py --paper: gexnet's GPT against transformers' GPT-2 with the
#      same weights, on the paper's model and batch;
#   3. benchmarks/perturb.py --paper --gpu-only: seed 002's autoencoder, the batched
#      perturbation engine and bf16 training time per 238,000-sample epoch on the GPU;
#   (4. the later models' benchmarks, added here as they come.)
# and one table of it all, gpu_check.md, in OUT_DIR (default: $OUT, else ./gpu_check).
# Run it from an environment with gexnet and its test extras on a CUDA build of PyTorch:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Paste the table into the README (section "Training benchmark") with the device's name.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check}}"
mkdir -p "$out"
# GPU_CHECK_DRY=1 runs the same steps on a machine without a GPU (the quick benchmark preset),
# to check this script itself: the CUDA tests then fail, and the table says so.
dry="${GPU_CHECK_DRY:-0}"
preset=--paper
if [ "$dry" = 1 ]; then
    preset=--quick
else
    python -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null || {
        echo "gpu_check: torch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES, or a CPU" \
            "build of torch)" >&2
        exit 1
    }
fi

start=$(date +%s)
status=0
echo "== CUDA training tests" >&2
timeout 300 python -m pytest tests/training/test_cuda.py --gpu -p no:cacheprovider -rA \
    --junitxml "$out/cuda_tests.xml" 2>&1 | tee "$out/cuda_tests.log" >&2 || status=1
echo "== training throughput, the paper's model" >&2
timeout 240 python benchmarks/train_throughput.py "$preset" --tsv "$out/train_throughput.tsv" \
    2>&1 | tee "$out/train_throughput.log" >&2 || status=1

echo "== the autoencoder's perturbation engine and training, seed 002's size" >&2
perturb_args=(--paper --gpu-only)
[ "$dry" = 1 ] && perturb_args=(--genes 2000 --hidden 500 --latent 100 --no-train)
timeout 240 python benchmarks/perturb.py "${perturb_args[@]}" 2>&1 | tee "$out/perturb.log" >&2 \
    || status=1

python - "$out" "$start" "$status" "$preset" <<'PY'
"""One Markdown table from the tests' JUnit XML and the benchmarks' TSV tables."""
import csv, subprocess, sys, time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

out, start, status, preset = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = []
xml = out / "cuda_tests.xml"
if xml.is_file():
    for case in ET.parse(xml).iter("testcase"):
        result, detail = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                result = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[tag]
                detail = (node.get("message") or "").splitlines()[0][:120] if node.get("message") else ""
        rows.append((f"test: {case.get('name')}", result, f"{float(case.get('time', 0)):.0f} s", detail))
else:
    rows.append(("CUDA training tests", "ERROR", "", "no results (see cuda_tests.log)"))
tsv = out / "train_throughput.tsv"
if tsv.is_file():
    with open(tsv) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows.append((
                f"train_throughput {preset}: {r['implementation']}", "measured",
                f"{r['tokens/s']} tokens/s", f"MFU {r['MFU']}, {r['peak mem']}, "
                f"gexnet ÷ this {r['gexnet ÷ this']}",
            ))
else:
    rows.append((f"train_throughput {preset}", "ERROR", "", "no table (see train_throughput.log)"))
log = out / "perturb.log"
measured = [l for l in log.read_text().splitlines() if "GPU" in l] if log.is_file() else []
rows += [("perturb.py --paper", "measured", "", l.strip()) for l in measured] or [
    ("perturb.py --paper", "ERROR", "", "no GPU lines (see perturb.log)")]
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "no GPU (dry run)"
count = torch.cuda.device_count()
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip().splitlines()
except OSError:
    smi = []
lines = [
    f"GPU check, {time.strftime('%Y-%m-%d')}: {count} × {name}, driver {smi[0] if smi else '?'}, "
    f"torch {torch.__version__} (CUDA {torch.version.cuda}), {time.time() - start:.0f} s in all",
    "",
    "| check | result | measure | detail |",
    "|---|---|---|---|",
    *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows),
]
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
failed = any(r[1] in ("FAILED", "ERROR") for r in rows)
sys.exit(1 if failed or status else 0)
PY
