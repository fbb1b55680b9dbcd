"""Your own images and your own model through the whole DAG, to int8 firmware on a simulated MCU.

    python examples/image_folder_to_mcu.py               # Fashion-MNIST written as a PNG folder
    python examples/image_folder_to_mcu.py --root DIR    # your folder: DIR/<class>/*.png (or DIR/train, DIR/test)
    python examples/image_folder_to_mcu.py --tiny        # a few images per class, short epochs

The same as the shell command

    malak-run data=image_folder data.root=DIR model.name=factory model.factory=custom_models:small_cnn

run from Python: every stage of the default pipeline (train, PTQ, QAT, pruning, distillation,
ONNX, int8 ONNX, profile, drift, C code, firmware build, QEMU). Without Fashion-MNIST
(Debian's dataset-fashion-mnist) the folder is written from scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
SMOKE = [  # short epochs and small timing runs, for --tiny
    "stage.train.epochs=2", "stage.qat.finetune.epochs=1", "stage.distill.train.epochs=1",
    "stage.prune_magnitude.steps=1", "stage.prune_magnitude.finetune.epochs=1",
    "stage.prune_structured.finetune.epochs=1", "stage.profile.runs=10", "stage.profile.memory=false",
    "stage.profile.per_layer_runs=2", "stage.sim_run.num_images=20",
]  # fmt: skip


def source_images(per_class: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], tuple[str, ...]]:
    """(train images by label, test images by label, class names): Fashion-MNIST, else digits."""
    if FASHION.is_dir():
        from malak_pipe.data.fashion_mnist import CLASS_NAMES, FILES
        from malak_pipe.data.idx import read_idx

        def split(images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
            return tuple(read_idx(next(FASHION.glob(FILES[key] + "*"))) for key in (images, labels))

        train, test = split("train_images", "train_labels"), split("test_images", "test_labels")
        names = tuple(name.replace("/", "-").replace(" ", "_").lower() for name in CLASS_NAMES)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (digits.images * 255 / 16).astype(np.uint8)
        train = test = (images, digits.target)
        names = tuple(str(d) for d in range(10))
    pick = {"train": per_class, "test": max(2, per_class // 4)}
    out = []
    for name, (x, y) in (("train", train), ("test", test)):
        offset = 0 if name == "train" or FASHION.is_dir() else per_class  # digits: test images after train
        out.append({label: x[np.flatnonzero(y == label)[offset : offset + pick[name]]] for label in range(10)})
    return out[0], out[1], names


def write_folder(root: Path, per_class: int) -> Path:
    """root/train/<class>/*.png and root/test/<class>/*.png."""
    from PIL import Image

    train, test, names = source_images(per_class)
    for split, images in (("train", train), ("test", test)):
        for label, stack in images.items():
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            for index, pixels in enumerate(stack):
                Image.fromarray(pixels).save(folder / f"{index:05d}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="an image folder of yours (default: one written here)")
    parser.add_argument("--tiny", action="store_true", help="a few images per class, short epochs")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))  # custom_models must be importable: the pipeline imports it by name

    import malak_pipe

    root = args.root or write_folder(Path("outputs") / "image_folder", 30 if args.tiny else 600)
    from PIL import Image

    size = Image.open(next(root.rglob("*.png"))).size[0]
    overrides = [
        "data=image_folder",
        f"data.root={root.resolve()}",
        f"data.image_size={size}",
        "model.name=factory",
        "model.factory=custom_models:small_cnn",
        f"+model.kwargs={{channels: 1, classes: 10, size: {size}}}",
        *(SMOKE if args.tiny else []),
    ]
    result = malak_pipe.run(overrides, console=not args.tiny)
    sim = result["sim_run"]
    figures = {
        "ok": result.ok,
        "statuses": {name: node["status"] for name, node in result.nodes.items()},
        "classes": result["data"]["num_classes"],
        "fp32_test_top1": result["train"]["test_top1"],
        "mcu_top1": sim.get("top1"),
        "bit_exact_rate": sim.get("bit_exact_rate"),
        "instructions_per_inference": sim.get("instructions_per_inference"),
        "flash_bytes": sim.get("flash_bytes"),
        "run_dir": str(result.run_dir),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
