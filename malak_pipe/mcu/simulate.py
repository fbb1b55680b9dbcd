"""Evaluate firmware on a simulator against the golden reference (and ONNX Runtime).

``evaluate_firmware`` quantizes float test images exactly as the golden reference does, runs
them through the firmware in batches (one simulator launch per batch), and compares: on-target
top-1, bit-exactness of every output against the golden graph, agreement with ONNX Runtime
(``ort_agreement``: the firmware's top-1 against ORT's; ``golden_ort_agreement``: the golden
reference's against ORT's, on the same images), instructions per inference and per layer from
the timer counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from malak_pipe.errors import ConfigError, StageFailed
from malak_pipe.mcu import qemu, renode, simio
from malak_pipe.mcu.configs import SimSettings
from malak_pipe.mcu.golden import quantize_input, run_golden
from malak_pipe.mcu.ir import IntGraph
from malak_pipe.mcu.target import TargetConfig


def _run_batch(
    elf: Path,
    target: TargetConfig,
    images: np.ndarray,
    out_bytes: int,
    layers: int,
    settings: SimSettings,
    on_progress: Callable[[int], None] | None,
) -> simio.RunOutput:
    timeout = settings.timeout_s + settings.timeout_per_image_s * len(images)
    if settings.backend == "qemu":
        if not target.qemu_machine:
            raise ConfigError(
                f"target '{target.name}' has no QEMU machine",
                path="target.qemu_machine",
                hint="use backend=renode for this target, or target=mps2_an500",
            )
        return qemu.run_images(
            elf,
            images,
            out_bytes,
            layers,
            machine=target.qemu_machine,
            icount=settings.icount,
            timeout_s=timeout,
            on_progress=on_progress,
        )
    if settings.backend == "renode":
        return renode.run_images(elf, images, out_bytes, layers, target=target, timeout_s=timeout)
    raise ConfigError(f"unknown simulator backend '{settings.backend}'", path="backend", hint="use qemu or renode")


def run_on_target(
    elf: Path,
    target: TargetConfig,
    images: np.ndarray,
    out_bytes: int,
    layers: int,
    settings: SimSettings,
    progress: Callable[[int], None] | None = None,
) -> simio.RunOutput:
    """All images through the firmware, ``settings.batch_images`` per launch; results concatenated."""
    parts: list[simio.RunOutput] = []
    done = 0
    for start in range(0, len(images), settings.batch_images):
        batch = images[start : start + settings.batch_images]
        base = done
        callback = None if progress is None else (lambda n, base=base: progress(base + n))
        parts.append(_run_batch(elf, target, batch, out_bytes, layers, settings, callback))
        done += len(batch)
        if progress is not None:
            progress(done)
    return simio.RunOutput(
        logits=np.concatenate([p.logits for p in parts]),
        ticks=np.concatenate([p.ticks for p in parts]),
        layer_ticks=np.sum([p.layer_ticks for p in parts], axis=0),
        stack_used=max(p.stack_used for p in parts),
        loop_ticks=sum(p.loop_ticks for p in parts),
    )


def ort_top1(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """Top-1 of ONNX Runtime (one thread) on float inputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    frozen = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else None
    if frozen is not None and len(x) % frozen:
        raise StageFailed(f"{len(x)} images do not fill the ONNX model's frozen batch of {frozen}", path=str(onnx_path))
    step = frozen or 256
    outs = [session.run(None, {first.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
    return np.concatenate(outs).reshape(len(x), -1).argmax(axis=1)


def evaluate_firmware(
    firmware_dir: Path,
    sources_dir: Path,
    x: np.ndarray,
    y: np.ndarray,
    settings: SimSettings = SimSettings(),
    *,
    onnx_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict, dict]:
    """Run float images ``x`` (N, C, H, W) with labels ``y``; (metrics, detailed report)."""
    graph = IntGraph.load(sources_dir)
    plan = json.loads((sources_dir / "plan.json").read_text())
    memory = json.loads((firmware_dir / "memory.json").read_text())
    target = TargetConfig(**json.loads((firmware_dir / "target.json").read_text()))
    images = quantize_input(graph, x)
    golden = run_golden(graph, images).reshape(len(images), -1)
    out_bytes, layers = graph.output_tensor.size, len(plan["layers"])
    started = time.monotonic()
    result = run_on_target(firmware_dir / "firmware.elf", target, images, out_bytes, layers, settings, progress)
    elapsed = time.monotonic() - started
    if result.logits.shape != golden.shape:
        raise StageFailed(f"firmware returned outputs of shape {result.logits.shape}, expected {golden.shape}")
    metrics = _accuracy(result.logits, golden, y)
    if onnx_path is not None:
        ort = ort_top1(onnx_path, np.asarray(x, dtype=np.float32))
        metrics["ort_top1"] = float((ort == y).mean())
        metrics["ort_agreement"] = float((ort == result.logits.argmax(axis=1)).mean())
        metrics["golden_ort_agreement"] = float((ort == golden.argmax(axis=1)).mean())
    counts = _instruction_counts(result, plan, target, settings, len(images))
    metrics.update(counts.pop("summary"))
    metrics.update(
        {
            "flash_bytes": memory["flash_bytes"],
            "ram_bytes": memory["ram_bytes"],
            "param_bytes": memory["param_bytes"],
            "stack_used_bytes": int(result.stack_used),
            "images": int(len(images)),
        }
    )
    # The report is an artifact other nodes may read: it holds no wall-clock figure, so two
    # runs of the same firmware write the same bytes (sim_seconds is a metric only).
    report = {"metrics": dict(metrics), "layers": counts["layers"], "memory": memory, "backend": settings.backend}
    metrics["sim_seconds"] = round(elapsed, 3)
    return metrics, report


def _accuracy(logits: np.ndarray, golden: np.ndarray, y: np.ndarray) -> dict:
    top1 = logits.argmax(axis=1)
    same = (logits == golden).all(axis=1)
    return {
        "top1": float((top1 == y).mean()),
        "test_top1": float((top1 == y).mean()),
        "golden_top1": float((golden.argmax(axis=1) == y).mean()),
        "bit_exact_rate": float(same.mean()),
        "bit_exact_mismatches": int((~same).sum()),
    }


def _instruction_counts(
    result: simio.RunOutput, plan: dict, target: TargetConfig, settings: SimSettings, n: int
) -> dict:
    """Per-inference and per-layer instruction counts (None when the timer does not count instructions)."""
    exact = settings.backend == "renode" or (settings.icount and target.timer == "cmsdk")
    scale = target.instructions_per_tick if exact else None
    macs = plan["macs"]
    per_inference = float(result.ticks.mean()) * scale if scale else None
    layers = []
    for info, ticks in zip(plan["layers"], result.layer_ticks, strict=True):
        count = float(ticks) / n * scale if scale else None
        layers.append(
            {
                "name": info["name"],
                "kernel": info["kernel"],
                "weight_bits": info.get("weight_bits"),
                "macs": info["macs"],
                "instructions": count,
                "instructions_per_mac": (count / info["macs"]) if count is not None and info["macs"] else None,
            }
        )
    summary = {
        "instructions_per_inference": per_inference,
        "instructions_per_mac": per_inference / macs if per_inference is not None and macs else None,
        "macs": macs,
        "layers": layers,
    }
    return {"summary": summary, "layers": layers}
