import numpy as np
import pandas as pd
import pytest

from bayes_densing.config import Config
from bayes_densing.data import DataError, assemble, load, read_scores

HEADER = "model,family,params,tokens,release_date,benchmark,score,role\n"
REF = """r1,Ref,1,2,2023-01-01,mmlu,0.30,reference
r1,Ref,1,2,2023-01-01,gsm8k,0.05,reference
r2,Ref,8,2,2023-01-01,mmlu,0.55,reference
r2,Ref,8,2,2023-01-01,gsm8k,0.30,reference
"""
TGT = """t1,A,3,,2023-06-01,mmlu,0.50,target
t1,A,3,,2023-06-01,gsm8k,0.20,target
t2,B,7,,2023-09-01,mmlu,0.62,target
t2,B,7,,2023-09-01,gsm8k,0.40,target
"""


def write(tmp_path, text, name="scores.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_long_file_assembles_with_references_first(tmp_path):
    data = load(Config(), write(tmp_path, HEADER + REF + TGT))
    assert data.n_ref == 2 and data.n_target == 2
    assert data.models.model.tolist() == ["r1", "r2", "t1", "t2"]
    assert data.benchmarks == ["gsm8k", "mmlu"]
    assert data.chance.tolist() == [0.0, 0.25]
    row = data.obs[(data.obs.model_idx == 2) & (data.obs.bench_idx == 1)].iloc[0]
    assert row.n == 14042 and row.k == round(0.5 * 14042)
    # t in months from 2023-02-24
    assert data.models.t.iloc[3] == pytest.approx((pd.Timestamp("2023-09-01")
                                                    - pd.Timestamp("2023-02-24")).days / 30.4375)


def test_wide_file_equals_long_file(tmp_path):
    wide = ("model,family,params,tokens,release_date,role,mmlu,gsm8k\n"
            "r1,Ref,1,2,2023-01-01,reference,0.30,0.05\nr2,Ref,8,2,2023-01-01,reference,0.55,0.30\n"
            "t1,A,3,,2023-06-01,target,0.50,0.20\nt2,B,7,,2023-09-01,target,0.62,0.40\n")
    a = load(Config(), write(tmp_path, wide, "wide.csv"))
    b = load(Config(), write(tmp_path, HEADER + REF + TGT))
    pd.testing.assert_frame_equal(a.obs, b.obs)


def test_percentages_are_converted_with_a_notice(tmp_path):
    text = (HEADER + REF + TGT).replace("0.50,target", "50,target")
    text = text.replace(",mmlu,0.", ",mmlu,PCT").replace("PCT30", "30").replace("PCT55", "55") \
        .replace("PCT62", "62")
    df, notices = read_scores(write(tmp_path, text))
    assert df[df.benchmark == "mmlu"].score.max() <= 1
    assert any("percentages" in n for n in notices)


def test_raw_parameter_counts_are_recognised(tmp_path):
    df, notices = read_scores(write(tmp_path, (HEADER + REF + TGT).replace("t2,B,7,", "t2,B,7e9,")))
    assert df[df.model == "t2"].params.iloc[0] == pytest.approx(7.0)
    assert any("raw parameter counts" in n for n in notices)


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.replace("t1,A,3,", "t1,A,-3,"), ["row", "column 'params'", "positive"]),
    (lambda s: s.replace("2023-09-01", "2023-13-45"), ["column 'release_date'", "not a date"]),
    (lambda s: s.replace("0.62,target", "1.7,target").replace("0.55,ref", "150,ref"),
     ["column 'score'", "above 1"]),
    (lambda s: s + "t2,B,7,,2023-09-01,mmlu,0.70,target\n", ["different scores", "mmlu"]),
    (lambda s: s.replace("2023-09-01", "2099-01-01"), ["future"]),
    (lambda s: s.replace("t2,B,7,", "t2,B,seven,"), ["'seven' is not a number"]),
])
def test_bad_values_name_file_row_and_column(tmp_path, edit, words):
    path = write(tmp_path, edit(HEADER + REF + TGT))
    with pytest.raises(DataError) as err:
        load(Config(), path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_column_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="missing required column release_date"):
        load(Config(), write(tmp_path, "model,params,benchmark,score\nx,1,mmlu,0.3\n"))
    with pytest.raises(DataError, match="empty"):
        load(Config(), write(tmp_path, ""))
    with pytest.raises(DataError, match="file not found"):
        load(Config(), tmp_path / "nope.csv")


def test_unknown_benchmark_needs_n_items(tmp_path):
    text = (HEADER + REF + TGT).replace("gsm8k", "mybench")
    with pytest.raises(DataError, match="add an n_items column"):
        load(Config(), write(tmp_path, text))
    text2 = text.replace(",role\n", ",role,n_items\n").replace(",reference\n", ",reference,200\n") \
        .replace(",target\n", ",target,200\n")
    data = load(Config(), write(tmp_path, text2, "n.csv"))
    assert 200 in data.n_items.tolist()


def test_reference_family_must_exist_and_span_sizes(tmp_path):
    cfg = Config()
    cfg.data.reference = "Nope"
    with pytest.raises(DataError, match="reference family 'Nope' not found"):
        load(cfg, write(tmp_path, HEADER + REF + TGT))
    cfg.data.reference = "A"
    with pytest.raises(DataError, match="at least 2 different sizes"):
        load(cfg, write(tmp_path, HEADER + REF + TGT))


def test_since_window_and_single_date(tmp_path):
    cfg = Config()
    cfg.data.since = "2024-01-01"
    with pytest.raises(DataError, match="no target models in the window"):
        load(cfg, write(tmp_path, HEADER + REF + TGT))
    with pytest.raises(DataError, match="share one release date"):
        load(Config(), write(tmp_path, HEADER + REF + TGT.replace("2023-09-01", "2023-06-01")))


def test_bundled_dataset_loads_with_its_defaults():
    data = load(Config())
    assert set(data.references.family) == {"Qwen1.5"}
    assert data.n_target > 90
    assert data.targets.release_date.min() >= pd.Timestamp("2023-01-01")
    # the benchmark rule's set (docs/analyses.md): TruthfulQA and GSM8K fail it, GPQA is borderline
    assert set(data.benchmarks) == {"arc_challenge", "bbh", "hellaswag", "humaneval", "math_hard",
                                    "mmlu", "mmlu_pro", "winogrande", "xwinograd"}
    assert len(data.obs) == 824
    assert np.all((data.obs.score >= 0) & (data.obs.score <= 1))
    assert not data.models.model.str.contains("raven").any()  # is_base=false excluded


def test_active_params_for_moe(tmp_path):
    cfg = Config()
    cfg.data.params = "active"
    data = load(cfg)
    mixtral = data.models[data.models.model.str.contains("Mixtral-8x7B")].iloc[0]
    assert mixtral.params == pytest.approx(12.9) and mixtral.params_total == pytest.approx(46.7)


TARGETS_ONLY = """model,params,release_date,benchmark,score,n_items
m1,1.5,2024-01-10,mmlu,0.45,
m1,1.5,2024-01-10,gsm8k,0.20,
m1,1.5,2024-01-10,hellaswag,0.60,
m2,3,2024-03-01,mmlu,0.55,
m2,3,2024-03-01,gsm8k,0.35,
m2,3,2024-03-01,hellaswag,0.70,
m3,7,2024-05-01,mmlu,0.64,
m3,7,2024-05-01,gsm8k,0.50,
m3,7,2024-05-01,hellaswag,0.79,
m4,8,2024-07-01,mmlu,0.68,
m4,8,2024-07-01,gsm8k,0.55,
m4,8,2024-07-01,hellaswag,0.81,
m5,14,2024-09-01,mmlu,0.72,
m5,14,2024-09-01,gsm8k,0.65,
m5,14,2024-09-01,hellaswag,0.83,
m5,14,2024-09-01,mybench,0.40,200
"""


def test_target_only_file_borrows_bundled_reference(tmp_path):
    data = load(Config(), write(tmp_path, TARGETS_ONLY))
    assert data.n_target == 5 and set(data.references.family) == {"Qwen1.5"}
    assert data.benchmarks == ["gsm8k", "hellaswag", "mmlu"]
    assert any("Qwen1.5" in n and "shared benchmarks" in n for n in data.notices)
    assert any("mybench" in n for n in data.notices)


def test_target_only_file_without_shared_benchmark_is_an_error(tmp_path):
    text = "model,params,release_date,benchmark,score,n_items\n" \
           "m1,1,2024-01-01,foo,0.3,100\nm2,2,2024-02-01,foo,0.4,100\n"
    with pytest.raises(DataError, match="none of the file's benchmarks"):
        load(Config(), write(tmp_path, text))


def test_benchmark_without_reference_scores_and_too_few_shared_models_is_an_error(tmp_path):
    text = HEADER + REF + TGT + "t1,A,3,,2023-06-01,humaneval,0.1,target\n" \
                                "t2,B,7,,2023-09-01,humaneval,0.2,target\n"
    with pytest.raises(DataError, match="has no reference scores, and 2 of its models .* at least 5"):
        load(Config(), write(tmp_path, text))


def test_year_first_slashed_dates_are_dates_and_day_first_ones_are_refused(tmp_path):
    slashed = load(Config(), write(tmp_path, HEADER + REF + TGT.replace("2023-09-01", "2023/09/01")))
    dashed = load(Config(), write(tmp_path, HEADER + REF + TGT, "dashed.csv"))
    pd.testing.assert_frame_equal(slashed.models, dashed.models)
    with pytest.raises(DataError, match=r"'09/01/2023' is not a date; write YYYY-MM-DD"):
        load(Config(), write(tmp_path, HEADER + REF + TGT.replace("2023-09-01", "09/01/2023"),
                             "us.csv"))
