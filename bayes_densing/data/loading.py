"""The data layer's entry point: a user's file or a bundled dataset, read and assembled."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bayes_densing.config import Config
from bayes_densing.data.assembly import assemble
from bayes_densing.data.bundled import DATASETS, add_bundled_reference, dataset_path
from bayes_densing.data.messages import DataError
from bayes_densing.data.read import read_scores
from bayes_densing.data.score_data import ScoreData


def load(config: Config, data_path: str | Path | None = None) -> ScoreData:
    """Read the user's file (or the bundled dataset) and assemble it under ``config``."""
    cfg = config.data
    bundled = DATASETS.get(cfg.dataset)
    if data_path is None:
        if bundled is None:
            raise DataError(f"unknown dataset {cfg.dataset!r}; bundled datasets: {', '.join(DATASETS)}")
        path = dataset_path(cfg.dataset)
        benchmarks = cfg.benchmarks or list(bundled.benchmarks)
        since = cfg.since or bundled.since
        reference = cfg.reference or bundled.reference
    else:
        path = Path(data_path)
        benchmarks, since, reference = cfg.benchmarks, cfg.since, cfg.reference
    df, notices = read_scores(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    label = path.name if data_path is None else str(path)
    has_reference = reference or ("role" in df.columns and (df.role == "reference").any())
    if not has_reference and data_path is not None:
        df = add_bundled_reference(df, path, benchmarks, config, notices)
    return assemble(df, config, source=label, sha256=sha, benchmarks=benchmarks, since=since,
                    reference=reference, notices=notices)
