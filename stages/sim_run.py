"""sim_run: run the firmware on a simulator over test images; accuracy, bit-exactness, instructions."""

from __future__ import annotations

from typing import Literal, cast

from pydantic import PositiveInt

from malak_pipe.mcu.configs import SimSettings
from malak_pipe.stage import ExternalCode, Stage, StageConfig, StageContext, StageResult


class SimRunConfig(StageConfig, SimSettings):
    """The images (``num_images`` of ``split``; null: the whole split) and the fields of
    :class:`malak_pipe.mcu.configs.SimSettings`."""

    split: Literal["test", "val"] = "test"
    num_images: PositiveInt | None = 1000


class SimRun(Stage):
    """Inference on the simulated MCU vs the golden reference and ONNX Runtime."""

    name = "sim_run"
    version = 2  # golden_ort_agreement
    Config = SimRunConfig
    inputs = {"firmware": "firmware_elf", "sources": "c_sources", "data": "dataset", "onnx_int8": "onnx_model_int8"}
    optional_inputs = frozenset({"onnx_int8"})
    outputs = {"report": "json"}
    description = "firmware on QEMU/Renode: top-1, bit-exactness vs golden, instructions per inference"
    summary = {
        "top1": "top1 {:.2%}",
        "bit_exact_rate": "bit-exact {:.2%}",
        "flash_bytes": "flash {:bytes}",
        "instructions_per_inference": "instr {:M}",
        "ram_bytes": "ram {:bytes}",
    }

    @classmethod
    def external_code(cls, cfg: StageConfig) -> ExternalCode:
        """The simulator that runs the firmware (and Renode's platform files when it is the backend)."""
        if cast(SimRunConfig, cfg).backend == "renode":
            from malak_pipe.mcu.files import renode_dir

            return ExternalCode(files=(renode_dir(),), tools=("renode",))
        return ExternalCode(tools=("qemu-system-arm",))

    def run(self, cfg: SimRunConfig, ctx: StageContext) -> StageResult:
        import numpy as np

        from malak_pipe.mcu.simulate import evaluate_firmware

        data = ctx.load("data")
        split = getattr(data, cfg.split)
        x, y = _numpy(split.x), _numpy(split.y)
        if cfg.num_images is not None:
            x, y = x[: cfg.num_images], y[: cfg.num_images]
        onnx_path = ctx.load("onnx_int8").path if ctx.has_input("onnx_int8") else None
        with ctx.progress(len(x), f"{cfg.backend}: images") as bar:
            state = {"done": 0}

            def advance(done: int) -> None:
                if done > state["done"]:
                    bar.advance(done - state["done"])
                    state["done"] = done

            metrics, report = evaluate_firmware(
                ctx.load("firmware"),
                ctx.load("sources"),
                np.asarray(x, dtype=np.float32),
                y,
                cfg,
                onnx_path=onnx_path,
                progress=advance,
            )
        ctx.save("report", report)
        warnings = []
        if metrics["bit_exact_rate"] < 1.0:
            warnings.append(
                f"{metrics['bit_exact_mismatches']} of {metrics['images']} images differ from the golden reference"
            )
        ipi = metrics.get("instructions_per_inference")
        count = f"{ipi:.0f} instructions/inference ({metrics['instructions_per_mac']:.2f}/MAC)" if ipi else "no counts"
        ctx.log(f"top-1 {metrics['top1']:.4f}, bit-exact {metrics['bit_exact_rate']:.4f}, {count}")
        return StageResult(metrics=metrics, warnings=warnings)


def _numpy(value):
    """A torch tensor or array-like as a numpy array."""
    import numpy as np

    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
