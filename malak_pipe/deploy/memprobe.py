"""Peak memory of loading and running one model, measured in a fresh Python process.

Resident-set figures inside a long-lived process mislead (freed memory is reused, so a new
model's pages may not grow RSS at all). The probe starts a clean interpreter, imports torch
and ONNX Runtime, then reports from ``/proc/self/status`` (Linux):

- ``load_mb``: RSS growth from loading the model (torch artifact, or ORT session creation),
  after ``malloc_trim`` has returned freed heap to the OS; the model is loaded, run and
  dropped once before, so lazy imports and one-time runtime set-up are not counted;
- ``inference_mb``: growth of peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``)
  above the loaded state while warm-up and measured calls run: activations, arenas, scratch;
- ``peak_mb``: ``load_mb + inference_mb``, the model's footprint while it runs.

    python -m malak_pipe.deploy.memprobe \
        '{"kind": "onnx", "path": "m.onnx", "shape": [1, 8, 8], "batch": 1, "threads": 1, "runs": 20}'
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from malak_pipe.errors import StageFailed


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _load(spec: dict[str, Any]) -> Any:
    import numpy as np

    x = np.zeros((spec["batch"], *spec["shape"]), dtype=np.float32)
    if spec["kind"] == "onnx":
        from malak_pipe.deploy.ort_runtime import make_session

        session = make_session(spec["path"], threads=spec["threads"])
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)
    import torch

    from malak_pipe.artifacts import get_type
    from malak_pipe.deploy.torch_int8 import engine_of, quantized_engine

    torch.set_num_threads(spec["threads"])
    artifact = get_type(spec["artifact_type"]).load(Path(spec["path"]))
    tensor = torch.from_numpy(x)
    engine = engine_of(artifact)

    def call() -> Any:
        with quantized_engine(engine), torch.inference_mode():
            return artifact.module(tensor)

    return call


def measure_in_this_process(spec: dict[str, Any]) -> dict[str, float]:
    """The probe itself (run it in a fresh process: see :func:`probe`)."""
    import onnxruntime  # noqa: F401  (imported before the baseline, like torch)
    import torch  # noqa: F401

    warm = _load(spec)  # first load: lazy imports, runtime set-up, thread pools
    warm()
    del warm
    _trim()
    base = _status_kb("VmRSS")
    fn = _load(spec)
    _trim()
    loaded = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    for _ in range(spec["runs"]):
        fn()
    peak = _status_kb("VmHWM")
    load_mb, inference_mb = (loaded - base) / 1024, max(peak - loaded, 0) / 1024
    return {"load_mb": load_mb, "inference_mb": inference_mb, "peak_mb": load_mb + inference_mb}


def probe(spec: dict[str, Any], *, timeout_s: float = 300.0) -> dict[str, float] | None:
    """Run the probe in a fresh interpreter; None where /proc is unavailable."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    command = [sys.executable, "-m", "malak_pipe.deploy.memprobe", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise StageFailed(f"memory probe failed for {spec.get('path')}: {done.stderr.strip()[-600:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    """Entry point of the probe process: one JSON spec argument, one JSON line out."""
    print(json.dumps(measure_in_this_process(json.loads(sys.argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
