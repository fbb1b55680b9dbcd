"""The ``profile`` stage: latency, per-layer time and peak memory of every model variant wired to it.

Every input is optional; wire what the pipeline has::

    profile:
      stage: profile
      inputs: {torch_fp32: train.model, torch_int8: ptq.model, onnx_fp32: export.model,
               onnx_int8: qonnx.model, onnx_int8_qop: qonnx.model_qop, data: data.dataset}

Each variant is timed at every (batch size, threads) setting: ``warmup`` untimed calls, then
``runs`` timed calls, taken in ``rounds`` interleaved blocks across the variants so that load
changes on a shared machine hit all of them alike; median, p90, mean, std, throughput and the speed-up against
``torch_fp32`` at the same setting. ``metrics["latency"]`` holds the first setting (by default
batch 1, one thread); the ``report`` artifact (JSON) holds every setting and the per-layer
tables. ``metrics["memory"]`` holds each variant's load / inference / peak resident memory (MB),
measured in a fresh process per variant (:mod:`malak_pipe.deploy.memprobe`). Timings depend on
what else the machine runs: compare numbers from one run.
"""

from __future__ import annotations

from typing import Any, cast

from malak_pipe.deploy.configs import ProfileConfig
from malak_pipe.errors import ConfigError
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult

TORCH_INPUTS = {"torch_fp32": "torch_model", "pruned": "torch_model", "distilled": "torch_model"}
TORCH_INT8_INPUTS = {"torch_int8": "torch_model_int8", "pruned_int8": "torch_model_int8"}
ONNX_INPUTS = {"onnx_fp32": "onnx_model", "onnx_int8": "onnx_model_int8", "onnx_int8_qop": "onnx_model_int8"}
LATENCY_KEYS = ("median_ms", "p90_ms", "mean_ms", "std_ms", "throughput_per_s", "speedup_vs_torch_fp32")


class ProfileStageConfig(StageConfig, ProfileConfig):
    """The fields of :class:`malak_pipe.deploy.configs.ProfileConfig`."""


def collect_variants(ctx: StageContext) -> list[Any]:
    """The wired inputs as ModelVariants, in a fixed order (torch FP32 first)."""
    from malak_pipe.deploy.profiler import ModelVariant
    from malak_pipe.deploy.torch_int8 import engine_of

    variants = []
    for name in TORCH_INPUTS:
        if ctx.has_input(name):
            variants.append(
                ModelVariant(
                    name, "torch", ctx.load(name).module, path=ctx.input_path(name), artifact_type=TORCH_INPUTS[name]
                )
            )
    for name in TORCH_INT8_INPUTS:
        if ctx.has_input(name):
            artifact = ctx.load(name)
            variants.append(
                ModelVariant(
                    name,
                    "torch",
                    artifact.module,
                    engine=engine_of(artifact),
                    path=ctx.input_path(name),
                    artifact_type=TORCH_INT8_INPUTS[name],
                )
            )
    for name in ONNX_INPUTS:
        if ctx.has_input(name):
            variants.append(ModelVariant(name, "onnx", ctx.load(name).path))
    return variants


def sample_shape(ctx: StageContext, variants: list[Any]) -> tuple[int, ...]:
    """(C, H, W) from the dataset if wired, else from a model's config or ONNX input."""
    if ctx.has_input("data"):
        return tuple(ctx.load("data").input_shape)
    for name in (*TORCH_INPUTS, *TORCH_INT8_INPUTS):
        if ctx.has_input(name):
            cfg = ctx.load(name).config
            return (cfg.in_channels, cfg.image_size, cfg.image_size)
    for variant in variants:
        if variant.kind == "onnx":
            import onnx

            dims = onnx.load(str(variant.model)).graph.input[0].type.tensor_type.shape.dim
            return tuple(d.dim_value for d in dims[1:])
    raise ConfigError("cannot tell the input shape", hint="wire data: <data node>.dataset")


class Profile(Stage):
    """Time every wired model variant; per-layer tables; peak memory; speed-ups vs torch FP32."""

    name = "profile"
    version = 1
    Config = ProfileStageConfig
    inputs = {**TORCH_INPUTS, **TORCH_INT8_INPUTS, **ONNX_INPUTS, "data": "dataset"}
    optional_inputs = frozenset(inputs)
    outputs = {"report": "json"}
    description = "latency (median/p90/mean/std), per-layer time, peak memory of each model variant"
    summary = {"best_variant": "fastest {}", "best_speedup_vs_torch_fp32": "{:.1f}x vs torch fp32"}
    provides = frozenset({"latency_by_input", "per_layer_latency"})

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.deploy.profiler import layer_tables, memory_table, profile_variants

        cfg = cast(ProfileStageConfig, cfg)
        variants = collect_variants(ctx)
        if not variants:
            raise ConfigError(
                "no model wired to the profile node",
                path=f"pipeline.{ctx.node}.inputs",
                hint=f"wire any of {', '.join(n for n in self.inputs if n != 'data')}",
            )
        shape = sample_shape(ctx, variants)
        with ctx.progress(len(variants) * len(cfg.batch_sizes) * len(cfg.threads), "latency") as bar:
            rows = profile_variants(variants, shape, cfg, progress=bar.advance)
        table = [row.as_dict() for row in rows]
        default = [r for r in table if r["batch_size"] == cfg.batch_sizes[0] and r["threads"] == cfg.threads[0]]
        latency = {r["variant"]: {k: r.get(k) for k in LATENCY_KEYS} for r in default if "median_ms" in r}
        layers = layer_tables(variants, shape, cfg) if cfg.per_layer else {}
        memory = memory_table(variants, shape, cfg) if cfg.memory else {}
        for name, numbers in latency.items():
            numbers["peak_rss_mb"] = (memory.get(name) or {}).get("peak_mb")
        ctx.save(
            "report",
            {
                "input_shape": list(shape),
                "settings": cfg.model_dump(),
                "latency": table,
                "per_layer": layers,
                "memory": memory,
            },
        )
        for name, numbers in latency.items():
            speedup = numbers["speedup_vs_torch_fp32"]
            ctx.log(f"{name}: median {numbers['median_ms']:.3f} ms" + (f", x{speedup:.2f}" if speedup else ""))
        metrics = self._metrics(cfg, latency, table, layers)
        if memory:
            metrics["memory"] = memory
        return StageResult(metrics=metrics)

    @staticmethod
    def _metrics(cfg: ProfileStageConfig, latency: dict, table: list, layers: dict) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "latency": latency,
            "latency_table": table,
            "batch_size": cfg.batch_sizes[0],
            "threads": cfg.threads[0],
            "runs": cfg.runs,
            "warmup": cfg.warmup,
        }
        speedups = {n: v["speedup_vs_torch_fp32"] for n, v in latency.items() if v["speedup_vs_torch_fp32"]}
        if speedups:
            best = max(speedups, key=speedups.__getitem__)
            metrics["best_variant"], metrics["best_speedup_vs_torch_fp32"] = best, speedups[best]
        if layers:
            primary = next(iter(layers))
            metrics["per_layer_top"] = [{"variant": primary, **row} for row in layers[primary][: cfg.top_layers]]
            metrics["per_layer_top_by_variant"] = {n: rows[: cfg.top_layers] for n, rows in layers.items()}
        return metrics
