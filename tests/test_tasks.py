"""Tasks are (benchmark, source) pairs: the reader names them, the registry resolves them, and
``--benchmarks`` selects them by task or by benchmark."""

import pytest

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.config import Config
from bayes_densing.data import DataError, assemble, read_scores

CSV = """model,family,params,release_date,benchmark,source,score
r1,R,1,2023-01-01,mmlu,h1,0.3
r2,R,4,2023-01-01,mmlu,h1,0.45
r3,R,16,2023-01-01,mmlu,h1,0.6
r1,R,1,2023-01-01,mmlu,H2,0.35
r3,R,16,2023-01-01,mmlu,h2,0.7
t1,T,2,2023-06-01,mmlu,h1,0.5
t2,T,2,2024-06-01,mmlu,h1,0.6
t1,T,2,2023-06-01,mmlu,h2,0.5
t1,T,2,2023-06-01,gsm8k,,0.2
r2,R,4,2023-01-01,gsm8k,,0.3
t2,T,2,2024-06-01,gsm8k,,0.25
"""


@pytest.fixture
def scores(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text(CSV)
    return read_scores(path)[0]


def test_a_source_makes_a_task(scores):
    assert sorted(scores.benchmark.unique()) == ["gsm8k", "mmlu@h1", "mmlu@h2"]
    # one model, one benchmark, two sources: two scores, not a conflict
    assert len(scores[(scores.model == "t1") & scores.benchmark.str.startswith("mmlu")]) == 2


def test_registry_resolves_the_base_benchmark():
    assert benchmark_registry.base_benchmark("BBH@swallow-v1") == "bbh"
    assert benchmark_registry.lookup("mmlu@h2") == benchmark_registry.lookup("mmlu")
    assert benchmark_registry.lookup("nonesuch@h1") is None


def test_select_by_benchmark_or_by_task(scores):
    config = Config()
    config.data.reference = "R"
    both = assemble(scores, config, source="x", benchmarks=["mmlu"])
    assert both.benchmarks == ["mmlu@h1", "mmlu@h2"]
    assert list(both.n_items) == [14042, 14042] and list(both.chance) == [0.25, 0.25]
    # the model's one effective size is shared by its tasks: one row per model
    assert both.models.model.is_unique and set(both.models.model) == {"r1", "r2", "r3", "t1", "t2"}
    one = assemble(scores, config, source="x", benchmarks=["mmlu@h2", "gsm8k"])
    assert one.benchmarks == ["mmlu@h2", "gsm8k"]
    with pytest.raises(DataError, match=r"column 'benchmark': bbh not in the data; available: "
                                        r"gsm8k, mmlu@h1, mmlu@h2"):
        assemble(scores, config, source="x", benchmarks=["bbh"])


def test_conflicting_scores_within_one_task_are_refused(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text(CSV + "t1,T,2,2023-06-01,mmlu,h1,0.55\n")
    with pytest.raises(DataError, match=r"rows 7, 13, column 'score': 't1' has 2 different "
                                        r"scores on 'mmlu@h1'"):
        read_scores(path)
