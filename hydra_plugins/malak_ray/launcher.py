"""A Hydra Launcher that runs each job as a Ray task (``hydra/launcher=ray_cluster``).

``ray.init(address=...)`` connects to a running cluster (``RAY_ADDRESS``, e.g. a head
started with ``ray start --head``) or starts a local one. Each job runs in the directory the
sweep was launched from, with its MALAK_* variables (MALAK_CACHE_DIR), so relative paths
and the cache mean the same on every node: on a cluster, launch from a filesystem all nodes
share.

hydra-ray-launcher (1.2) pins ``cloudpickle<3``, which joblib 1.6 (the local launcher)
refuses; this launcher needs only ``ray`` itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


def _execute_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    cwd: str,
    environment: dict[str, str],
) -> JobReturn:
    os.chdir(cwd)
    os.environ.update(environment)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


FORWARDED_ENV = ("MALAK_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH", "CI")


def _forwarded() -> dict[str, str]:
    """The launching shell's malak-pipe settings (MALAK_CACHE_DIR above all), which Ray
    workers, started with the head's environment, would not otherwise see."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


class MalakRayLauncher(Launcher):
    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 init: dict[str, Any] | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init = dict(init or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        if self.config is None or self.hydra_context is None or self.task_function is None:
            raise RuntimeError("Hydra calls setup() before launch()")
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, **self.init)
        log.info(f"Ray ({ray.get_runtime_context().gcs_address}) is launching {len(job_overrides)} jobs")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")
        remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus)(_execute_job)
        shared = (self.hydra_context, self.config, self.task_function, Singleton.get_state(), os.getcwd(), _forwarded())
        refs = [remote.remote(initial_job_idx + idx, list(o), *shared) for idx, o in enumerate(job_overrides)]
        return ray.get(refs)
