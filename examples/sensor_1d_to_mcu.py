"""A 1-D sensor model (accelerometer windows, N x 3 x 64) to int8 firmware on a simulated MCU.

    python examples/sensor_1d_to_mcu.py                  # DS-CNN from the zoo
    python examples/sensor_1d_to_mcu.py --model custom   # your own Conv1d net (custom_models:sensor_cnn)
    python examples/sensor_1d_to_mcu.py --tiny           # fewer windows, short training

The windows are saved as one .npz (x_train, y_train, x_test, y_test, class_names): the
``arrays`` source reads the same file a sensor logger would write. The firmware pipeline then
trains, exports to ONNX, quantizes to int8 QDQ, generates C (a 1-D convolution is lowered as
a 2-D one of height 1), builds it for the Cortex-M7 and runs it in QEMU against the golden
integer reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ACTIVITIES = ("walk", "run", "sit", "stairs")


def windows(count: int, seed: int, length: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 3-axis accelerometer windows: each activity a cadence and posture, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(ACTIVITIES))
    t = np.arange(length) / 50.0  # 50 Hz
    cadence = np.array([1.8, 2.8, 0.0, 1.2])[labels][:, None]
    posture = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 0.9], [0.7, 0.0, 0.7], [0.2, 0.3, 0.9]])[labels]
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    swing = np.sin(2 * np.pi * cadence * t + phase)
    axes = np.stack([posture[:, a, None] + (0.6 - 0.2 * a) * swing for a in range(3)], axis=1)
    return (axes + 0.15 * rng.standard_normal(axes.shape)).astype(np.float32), labels.astype(np.int64)


def write_windows(path: Path, n_train: int, n_test: int) -> Path:
    x_train, y_train = windows(n_train, seed=0)
    x_test, y_test = windows(n_test, seed=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=np.array(ACTIVITIES))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("ds_cnn", "custom"), default="ds_cnn")
    parser.add_argument("--tiny", action="store_true", help="fewer windows, short training")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))

    import malak_pipe

    data = write_windows(Path("outputs") / "sensors.npz", 400 if args.tiny else 4000, 100 if args.tiny else 1000)
    model = ["model=ds_cnn", "model.width_mult=0.5"]
    if args.model == "custom":
        model = ["model.name=factory", "model.factory=custom_models:sensor_cnn"]
    overrides = [
        "pipeline=firmware",
        "data=arrays",
        f"data.root={data.resolve()}",
        *model,
        f"stage.train.epochs={8 if args.tiny else 15}",
        "stage.train.batch_size=32",
        "stage.train.lr=0.005",
        f"stage.sim_run.num_images={20 if args.tiny else 200}",
    ]
    result = malak_pipe.run(overrides, console=not args.tiny)
    sim = result["sim_run"]
    figures = {
        "ok": result.ok,
        "statuses": {name: node["status"] for name, node in result.nodes.items()},
        "input_shape": result["data"]["input_shape"],
        "fp32_test_top1": result["train"]["test_top1"],
        "params": result["train"]["params"],
        "mcu_top1": sim.get("top1"),
        "bit_exact_rate": sim.get("bit_exact_rate"),
        "instructions_per_inference": sim.get("instructions_per_inference"),
        "flash_bytes": sim.get("flash_bytes"),
        "ram_bytes": sim.get("ram_bytes"),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
