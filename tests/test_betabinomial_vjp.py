"""benchmarks/betabinomial_vjp.py times a hand-written gradient of the beta-binomial against
JAX's autodiff; the timing means something only if both are the gradient of the same density.
The script refuses to time them otherwise; here it must find them equal on a small design."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import betabinomial_vjp  # noqa: E402


def test_the_hand_written_gradient_is_the_beta_binomials(tmp_path):
    out = tmp_path / "vjp.json"
    assert betabinomial_vjp.main(["--scores", "300", "--groups", "4", "--rounds", "1",
                                  "--reps", "3", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["max_relative_gradient_gap"] < 1e-8
    assert record["rounds"][0]["autodiff_us"] > 0 and record["rounds"][0]["by_hand_us"] > 0
