"""The container the model consumes: models, tasks and scores, indexed and ordered."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ScoreData:
    """Everything the model needs, with reference models first, then targets by date."""

    models: pd.DataFrame          # model, family, params, params_total, params_active, tokens,
                                  # release_date, t (months from date_origin), role
    benchmarks: list[str]
    chance: np.ndarray            # per benchmark
    n_items: np.ndarray           # per benchmark
    obs: pd.DataFrame             # model_idx, bench_idx, score, k, n, loss
    source: str
    sha256: str
    date_origin: str
    since: str = ""
    reference: str = ""           # the reference family chosen by name ("" when from a role column)
    # tasks without reference scores: their scores, anchored after the fit (sequential.py)
    unanchored: pd.DataFrame = field(default_factory=pd.DataFrame)
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_ref(self) -> int:
        return int((self.models.role == "reference").sum())

    @property
    def n_target(self) -> int:
        return len(self.models) - self.n_ref

    @property
    def targets(self) -> pd.DataFrame:
        return self.models.iloc[self.n_ref:]

    @property
    def references(self) -> pd.DataFrame:
        return self.models.iloc[: self.n_ref]

    @property
    def has_loss(self) -> bool:
        return bool(self.obs["loss"].notna().any())

    def describe(self) -> str:
        t = self.targets.release_date
        return (f"{self.n_target} target models ({t.min():%Y-%m-%d} … {t.max():%Y-%m-%d}), "
                f"{self.n_ref} reference models ({', '.join(sorted(set(self.references.family)))}), "
                f"{len(self.benchmarks)} benchmarks ({', '.join(self.benchmarks)}), "
                f"{len(self.obs)} scores"
                + (f"; {self.unanchored.benchmark.nunique()} task(s) without reference scores "
                   f"({', '.join(sorted(self.unanchored.benchmark.unique()))}), "
                   f"{len(self.unanchored)} scores" if not self.unanchored.empty else ""))
