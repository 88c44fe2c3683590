"""The data layer: read, check and assemble benchmark scores into :class:`ScoreData`.

A scores CSV (long or wide; docs/data-format.md) is read and checked cell by cell (``read``,
``dialect``, ``checks``), every problem a :class:`DataError` naming file, row (line number,
header = line 1) and column; ``assembly`` selects, checks and indexes it under a configuration;
``loading.load`` does both, for a user's file or a bundled dataset (``bundled``). The benchmarks'
chance levels and item counts are in ``registry``.
"""

from bayes_densing.data.anchoring import MIN_SHARED_MODELS, MIN_SHARED_SPAN
from bayes_densing.data.assembly import assemble
from bayes_densing.data.bundled import DATASETS, BundledDataset, bundled_reference, dataset_path
from bayes_densing.data.checks import MAX_NAME
from bayes_densing.data.loading import load
from bayes_densing.data.messages import DataError
from bayes_densing.data.read import read_scores
from bayes_densing.data.score_data import ScoreData
from bayes_densing.data.tasks import select_tasks

__all__ = ["DATASETS", "MAX_NAME", "MIN_SHARED_MODELS", "MIN_SHARED_SPAN", "BundledDataset",
           "DataError", "ScoreData", "assemble", "bundled_reference", "dataset_path", "load",
           "read_scores", "select_tasks"]
