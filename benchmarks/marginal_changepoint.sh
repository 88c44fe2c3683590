#!/usr/bin/env bash
# The marginalised change date on swallow-2025, two checkouts side by side (same machine, same
# load): OLD, a checkout whose model samples the slopes themselves, and this one, which samples
# them rescaled per date (model.marginal_slopes). Prints each fit's diagnostics and claim.
#   git worktree add /tmp/wt-old 0bd692d && bash benchmarks/marginal_changepoint.sh /tmp/wt-old
set -euo pipefail
old=${1:?usage: benchmarks/marginal_changepoint.sh OLD_CHECKOUT}
here=$(cd "$(dirname "$0")/.." && pwd)
for seed in 0 1; do
  for code in "$old" "$here"; do
    out=$(mktemp -d)/run
    PYTHONPATH=$code "$here/.venv/bin/bayes-densing" sample --dataset swallow-2025 \
      --trend changepoint --set model.changepoint=marginal --curves joint --seed "$seed" \
      --out "$out" --no-figures --allow-warnings 2>&1 | grep -E "divergences" | sed "s#^#$code seed $seed:#"
    PYTHONPATH=$code "$here/.venv/bin/bayes-densing" claim "$out" 2>&1 \
      | grep -E "P\(slower|^Slope after" | sed "s#^#    #"
    rm -rf "$(dirname "$out")"
  done
done
