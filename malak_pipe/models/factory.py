"""Build any nn.Module from an import string ``"pkg.module:callable"`` and keyword arguments."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from malak_pipe.errors import ConfigError
from malak_pipe.models.config import ModelConfig


def import_callable(target: str, *, path: str) -> Callable[..., Any]:
    """The object named by ``"pkg.module:attr"`` (attr may be dotted); ConfigError if absent."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"'{target}' is not an import string", path=path, hint="write it as 'pkg.module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module '{module_name}': {exc}",
            path=path,
            hint="check the spelling and that the package is installed in this environment",
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"module '{module_name}' has no attribute '{attr}'", path=path)
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"'{target}' is not callable", path=path)
    return obj


def call_factory(target: str, kwargs: dict[str, Any], *, path: str, kwargs_path: str) -> Any:
    """``target(**kwargs)`` for an import string ``target``; ConfigError naming ``path`` (the
    import string's config path) or ``kwargs_path`` (when the arguments do not fit)."""
    factory = import_callable(target, path=path)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"calling {target} with kwargs {sorted(kwargs)} failed: {exc}",
            path=kwargs_path,
            hint="pass the keyword arguments the factory accepts",
        ) from None


def build_from_factory(cfg: ModelConfig) -> nn.Module:
    """Call ``cfg.factory(**cfg.kwargs)``; it must return an nn.Module."""
    if cfg.factory is None:
        raise ConfigError(
            "model.name=factory needs model.factory",
            path="model.factory",
            hint="set it to an import string 'pkg.module:callable'",
        )
    module = call_factory(cfg.factory, cfg.kwargs, path="model.factory", kwargs_path="model.kwargs")
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{cfg.factory} returned {type(module).__name__}, not a torch.nn.Module", path="model.factory"
        )
    return module
