"""Registry of known benchmarks: chance level (the performance map's floor) and item count.

Item counts are the sizes of the evaluation sets as run by the Open LLM Leaderboard / the
papers' harnesses; chance is the expected score of random guessing on the reported metric.
A benchmark missing here needs an ``n_items`` column (and optionally ``chance``) in the data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str
    chance: float
    n_items: int
    description: str


REGISTRY: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("mmlu", 0.25, 14042, "MMLU, 57 subjects, 4-way multiple choice"),
    Benchmark("mmlu_pro", 0.10, 12032, "MMLU-Pro, 10-way multiple choice"),
    Benchmark("bbh", 0.25, 5761, "BIG-Bench Hard (leaderboard v2 multiple-choice subset)"),
    Benchmark("math", 0.0, 5000, "MATH, exact-match answers"),
    Benchmark("math_hard", 0.0, 1324, "MATH level 5, exact-match answers"),
    Benchmark("gsm8k", 0.0, 1319, "GSM8K grade-school maths, exact match"),
    Benchmark("humaneval", 0.0, 164, "HumanEval pass@1"),
    Benchmark("mbpp", 0.0, 500, "MBPP pass@1 (test split)"),
    Benchmark("arc_challenge", 0.25, 1172, "ARC-Challenge, 4-way multiple choice"),
    Benchmark("hellaswag", 0.25, 10042, "HellaSwag, 4-way sentence completion"),
    Benchmark("winogrande", 0.5, 1267, "WinoGrande, 2-way coreference"),
    Benchmark("truthfulqa", 0.2, 817, "TruthfulQA MC2 (chance ≈ 0.2 on MC1-style choices)"),
    Benchmark("gpqa", 0.25, 1192, "GPQA (all subsets), 4-way multiple choice"),
    Benchmark("musr", 0.3, 756, "MuSR multistep soft reasoning, 2–5-way choice"),
    Benchmark("ifeval", 0.0, 541, "IFEval instruction following, strict accuracy"),
    Benchmark("xwinograd", 0.5, 2325, "XWinograd (English), 2-way coreference"),
    Benchmark("openbookqa", 0.25, 500, "OpenBookQA (test), 4-way multiple choice"),
    Benchmark("triviaqa", 0.0, 17944, "TriviaQA (unfiltered validation), exact match"),
    # half of SQuAD 2.0's questions have no answer: always abstaining scores 0.50
    Benchmark("squad2", 0.5, 11873, "SQuAD 2.0 (dev), exact match"),
]}


TASK_SEP = "@"        # a task is a benchmark from one source: "bbh@swallow-v1"


def base_benchmark(task: str) -> str:
    """The benchmark a task scores (``"bbh@swallow-v1"`` → ``"bbh"``)."""
    return task.strip().lower().split(TASK_SEP, 1)[0]


def lookup(name: str) -> Benchmark | None:
    """The registry's entry of a benchmark, or of a task's benchmark."""
    return REGISTRY.get(base_benchmark(name))
