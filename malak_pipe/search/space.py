"""The search space: named knobs of the DAG, each turned into Hydra overrides for a trial.

A parameter is declared in config (``hydra.sweeper.params``) under the override key it sets,
or under a free name when its choices are lists of overrides::

    params:
      model.width_mult: {choices: [0.25, 0.5, 0.75]}
      stage.prune_structured.ratio: {low: 0.0, high: 0.5, step: 0.1}
      route:                                       # a choice switches nodes and wiring
        choices:
          ptq: [pipeline.quantize_onnx.inputs.torch_int8=ptq_static.model, pipeline.qat.enabled=false]
          qat: [pipeline.quantize_onnx.inputs.torch_int8=qat.model, pipeline.ptq_static.enabled=false]
      stage.qat.finetune.epochs: {low: 1, high: 3, when: {route: qat}}

``when`` makes a parameter conditional: it is suggested only in trials whose earlier
parameters took those values (Optuna's define-by-run), so its absence is not a value.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from malak_pipe.errors import ConfigError

Scalar = bool | int | float | str


class Suggester(Protocol):
    """What an Optuna trial offers (``optuna.trial.Trial``)."""

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
                      ) -> float: ...


class Param(BaseModel):
    """One knob: ``choices`` (values, or a mapping of labels to override lists), or a range
    ``low``..``high`` (int when both are ints; ``step``, ``log``); ``when`` its condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choices: list[Scalar] | dict[str, list[str]] | None = None
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    when: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        ranged = self.low is not None or self.high is not None
        if (self.choices is None) == (not ranged):
            raise ValueError("give either choices or low and high")
        if ranged and (self.low is None or self.high is None):
            raise ValueError("a range needs both low and high")
        if ranged and self.low > self.high:  # type: ignore[operator]  (both set: checked above)
            raise ValueError("a range needs low <= high")
        if self.choices is not None and len(self.choices) == 0:
            raise ValueError("choices is empty")
        return self

    @property
    def is_int(self) -> bool:
        """A range written with integers (``low: 1, high: 3``) suggests integers."""
        return all(isinstance(v, int) for v in (self.low, self.high)) and isinstance(self.step, int | None)


class SearchSpace:
    """The declared parameters, in declaration order (a condition names an earlier one)."""

    def __init__(self, params: dict[str, Any]):
        self.params: dict[str, Param] = {}
        for name, spec in params.items():
            try:
                self.params[name] = Param.model_validate(spec if isinstance(spec, dict) else {"choices": spec})
            except ValidationError as exc:
                reason = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
                raise ConfigError(
                    f"search parameter '{name}': {reason}",
                    path=f"hydra.sweeper.params.{name}",
                    hint="write {choices: [...]}, {choices: {label: [overrides]}} or {low: .., high: .., step: ..}",
                ) from None
            for other in self.params[name].when:
                if other not in self.params or other == name:
                    raise ConfigError(
                        f"search parameter '{name}' is conditional on '{other}', which is not declared before it",
                        path=f"hydra.sweeper.params.{name}.when",
                    )

    def suggest(self, trial: Suggester) -> tuple[dict[str, Scalar], list[str]]:
        """The values this trial takes (conditions applied) and the overrides they mean."""
        values: dict[str, Scalar] = {}
        overrides: list[str] = []
        for name, param in self.params.items():
            if any(values.get(key) != wanted for key, wanted in param.when.items()):
                continue
            value = self._suggest_one(trial, name, param)
            values[name] = value
            overrides.extend(self.overrides_of(name, value))
        return values, overrides

    def overrides_of(self, name: str, value: Scalar) -> list[str]:
        param = self.params[name]
        if isinstance(param.choices, dict):
            return list(param.choices[str(value)])
        return [f"{name}={_hydra_value(value)}"]

    @staticmethod
    def _suggest_one(trial: Suggester, name: str, param: Param) -> Scalar:
        if isinstance(param.choices, dict):
            return trial.suggest_categorical(name, list(param.choices))
        if param.choices is not None:
            return trial.suggest_categorical(name, list(param.choices))
        low, high = cast(float, param.low), cast(float, param.high)  # both set: the validator checked
        if param.is_int:
            return trial.suggest_int(name, int(low), int(high), step=int(param.step or 1), log=param.log)
        return trial.suggest_float(name, float(low), float(high), step=param.step, log=param.log)


def _hydra_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)
