"""The ``distill`` stage: train a student on a frozen teacher's soft targets (Hinton KD).

Teacher: input ``teacher`` (a torch_model, or a torch_model_int8). Student: input ``student``
when wired (e.g. a pruned model, so prune -> distill -> quantize works), otherwise a fresh
model built from ``student`` (a ModelConfig; defaults to the run's model) seeded by
``train.seed``. Loss: alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE, plus optional
FitNets ``hints`` (student layer -> 1x1 adapter -> MSE to a teacher layer). Reports the student's
accuracy, the teacher's and the gap. To compare with the same student trained from scratch,
add a train node to the experiment.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.compress.configs import DistillConfig
from malak_pipe.errors import ConfigError
from malak_pipe.models.config import ModelConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult
from malak_pipe.training.settings import FitSettings

from ._compress import (
    COMPRESSION_SUMMARY,
    fit_metrics,
    library_config,
    reference_metrics,
    save_float,
    smoke_warnings,
    training_progress,
)


class DistillStageConfig(StageConfig, DistillConfig):
    """The fields of :class:`malak_pipe.compress.DistillConfig`, the student and its training."""

    student: ModelConfig | None = None
    train: FitSettings = FitSettings(epochs=10, lr=1e-3)


class Distill(Stage):
    """Knowledge distillation of a teacher into a (smaller) student."""

    name = "distill"
    version = 2
    Config = DistillStageConfig
    inputs = {
        "teacher": ("torch_model", "torch_model_int8"),
        "data": "dataset",
        "student": "torch_model",
        "baseline": "torch_model",
    }
    optional_inputs = frozenset({"student", "baseline"})
    outputs = {"model": "torch_model"}
    description = "knowledge distillation (Hinton KD, optional FitNets hints) into a student"
    summary = COMPRESSION_SUMMARY

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.compress import KnowledgeDistiller

        cfg = cast(DistillStageConfig, cfg)
        data, teacher = ctx.load("data"), ctx.load("teacher")
        teacher_metrics = reference_metrics(ctx, "teacher", teacher.module, data)
        student_config, student = self._student(cfg, ctx, data)
        distiller = KnowledgeDistiller(library_config(cfg, DistillConfig))
        with training_progress(ctx, data, cfg.train, "distill") as bar:
            result = distiller.fit(student, teacher.module, data, cfg.train, progress=bar)
        metrics: dict[str, Any] = save_float(ctx, data, student_config, student, teacher_metrics)
        metrics.update(
            {
                "teacher_test_top1": teacher_metrics["test_top1"],
                "student_test_top1": metrics["test_top1"],
                "teacher_student_gap_pp": (teacher_metrics["test_top1"] - metrics["test_top1"]) * 100.0,
                "teacher_params": teacher_metrics.get("params"),
                "student_from": "input" if ctx.has_input("student") else "scratch",
                **fit_metrics(result, cfg.train),
            }
        )
        return StageResult(metrics=metrics, warnings=smoke_warnings(cfg.train))

    @staticmethod
    def _student(cfg: DistillStageConfig, ctx: StageContext, data: Any) -> tuple[ModelConfig, Any]:
        """(config, module) of the student: the wired input, else a fresh zoo model."""
        from malak_pipe.models import build_model, check_model_fits_data
        from malak_pipe.training import seed_everything

        if ctx.has_input("student"):
            artifact = ctx.load("student")
            return artifact.config, artifact.module
        if cfg.student is None:
            raise ConfigError(
                "distill has no student: wire the 'student' input or set the student config",
                path="student",
                hint="set student: ${model} (the run's model) or a model config "
                "such as {name: simple_cnn, width_mult: 0.5}",
            )
        student = cfg.student.for_data(data.input_shape, data.num_classes)  # fields left null follow the data
        check_model_fits_data(student, data.input_shape, data.num_classes, "student")
        seed_everything(cfg.train.seed)
        return student, build_model(student)
