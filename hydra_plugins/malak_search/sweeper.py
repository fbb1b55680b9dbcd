"""The Hydra Sweeper plugin ``hydra/sweeper=search`` (conf/hydra/sweeper/search.yaml).

Hydra only instantiates sweepers defined under the ``hydra_plugins`` namespace; this class
is the thin adapter: it turns its config into :class:`malak_pipe.search.driver.SearchSettings`
and lets the driver run the study through Hydra's own launcher, so ``-m`` with joblib,
submitit (SLURM) or Ray runs the trials as it runs any sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class MalakSearchSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.raw = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                    for k, v in settings.items()}
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from malak_pipe.search.driver import SearchDriver, parse_settings

        if self.config is None:
            raise RuntimeError("Hydra calls setup() before sweep()")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        summary = SearchDriver(parse_settings(self.raw), self.launcher, sweep_dir, arguments).run()
        print(f"malak-search: {summary['counts']}")
        print(f"malak-search: report in {sweep_dir / 'report'}; {summary['reproduce']}")
        return summary
