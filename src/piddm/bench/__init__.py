"""``piddm bench``: PIDDM vs the baselines (docs/method.md, "Baselines") on the same teacher, data,
instances, masks and latents, with cost measured in the same process for every row.

* :mod:`piddm.bench.config`: the typed bench config (YAML) and its loader;
* :mod:`piddm.bench.models`: the models of each method, or tiny ones built into a cache;
* :mod:`piddm.bench.masks`: the observation masks of its task instances (for scripts too);
* :mod:`piddm.bench.runner`: the rows (generation, forward, inverse, reconstruct; variants;
  the classical MAP and Bayes-floor rows) and ``bench.json``;
* :mod:`piddm.bench.figures` / :mod:`piddm.bench.report`: figures and the markdown table.
"""

from piddm.bench.config import (
    METHODS,
    MODEL_NAMES,
    TASK_NAMES,
    BenchConfig,
    bench_config_from_dict,
    load_bench_config,
)
from piddm.bench.masks import bench_masks, task_mask_seed
from piddm.bench.report import markdown_table
from piddm.bench.runner import ROW_KEYS, BenchResult, run_bench

__all__ = [
    "METHODS",
    "MODEL_NAMES",
    "ROW_KEYS",
    "TASK_NAMES",
    "BenchConfig",
    "BenchResult",
    "bench_config_from_dict",
    "bench_masks",
    "load_bench_config",
    "markdown_table",
    "run_bench",
    "task_mask_seed",
]
