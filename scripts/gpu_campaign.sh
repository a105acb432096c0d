#!/usr/bin/env bash
# The book's GPU programme in resumable slices: runs the package from this tree (no install needed), so it works on
# a machine that has torch, torchvision, scipy, tqdm and matplotlib but nothing else. Options: scripts/gpu_campaign.py --help.
#   bash scripts/gpu_campaign.sh OUT [--budget-minutes M] [--data-root DIR] [--carry DIR] [--pack DIR] [--smoke]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python3 "$root/scripts/gpu_campaign.py" "$@"
