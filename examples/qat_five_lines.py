"""QAT in five lines on standard PyTorch DataLoaders, next to the same run through the pipeline.

    python examples/qat_five_lines.py                 # SimpleCNN on Fashion-MNIST (digits without it)
    python examples/qat_five_lines.py --pipeline      # ... and the same settings through malak_pipe.run
    python examples/qat_five_lines.py --tiny          # seconds: digits, one short epoch

The model is any nn.Module and the data any DataLoader of (inputs, labels); here a SimpleCNN
and TensorDatasets over the normalized splits. The int8 size is the file the pipeline would
store (the packed torch_model_int8 artifact), so both columns compare like with like.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from malak_pipe.compress import QAT, QATConfig
from malak_pipe.compress.artifact import TORCH_MODEL_INT8, QuantizedModelArtifact
from malak_pipe.compress.report import artifact_bytes
from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.data.fashion_mnist import SYSTEM_DIR
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.training import FitSettings, evaluate, fit, seed_everything


def settings_for(tiny: bool) -> dict:
    """One set of settings for both paths (the pipeline's are overrides of the same values)."""
    dataset = "digits" if tiny or not SYSTEM_DIR.is_dir() else "fashion_mnist"
    return {
        "data": dataset,
        "max_train": 400 if tiny else None,
        "train": FitSettings(epochs=1 if tiny else 3, batch_size=64, lr=1e-3),
        "qat": FitSettings(epochs=1, batch_size=64, lr=1e-4, max_batches_per_epoch=3 if tiny else None),
    }


def loaders(data, batch_size: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Plain torch DataLoaders over the splits (what a user's training script has)."""
    shuffled = torch.Generator().manual_seed(0)
    train = DataLoader(
        TensorDataset(data.train.x, data.train.y), batch_size=batch_size, shuffle=True, generator=shuffled
    )
    val = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=512)
    test = DataLoader(TensorDataset(data.test.x, data.test.y), batch_size=512)
    return train, val, test


def five_lines(settings: dict) -> dict:
    data = load_dataset(DataConfig(name=settings["data"], max_train=settings["max_train"]))
    train_loader, val_loader, test_loader = loaders(data, settings["train"].batch_size)
    channels, size = data.input_shape[0], data.input_shape[1]
    config = ModelConfig(name="simple_cnn", in_channels=channels, num_classes=data.num_classes, image_size=size)
    seed_everything(0)  # as the train stage does before building the model
    model = build_model(config)
    fit(model, train_loader, settings["train"], val=val_loader)
    fp32, fp32_top1 = model, evaluate(model, test_loader).top1

    qat = QAT(QATConfig(backend="x86"))
    model = qat.prepare(model)
    model = qat.train(model, train_loader, val_loader, settings=settings["qat"])
    int8 = qat.convert(model)

    artifact = QuantizedModelArtifact(config, qat.recipe(fp32, data.input_shape), int8)
    return {
        "fp32_test_top1": fp32_top1,
        "int8_test_top1": evaluate(int8, test_loader).top1,
        "int8_size_bytes": artifact_bytes(TORCH_MODEL_INT8, artifact),
    }


def through_the_pipeline(settings: dict) -> dict:
    import malak_pipe

    train, qat = settings["train"], settings["qat"]
    overrides = [
        f"data={settings['data']}",
        "model=simple_cnn",
        "run.only=[qat]",
        f"stage.train.epochs={train.epochs}",
        f"stage.train.batch_size={train.batch_size}",
        f"stage.train.lr={train.lr}",
        f"stage.qat.finetune.epochs={qat.epochs}",
        f"stage.qat.finetune.batch_size={qat.batch_size}",
        f"stage.qat.finetune.lr={qat.lr}",
        f"stage.qat.finetune.max_batches_per_epoch={qat.max_batches_per_epoch or 'null'}",
    ]
    if settings["max_train"]:
        overrides.append(f"data.max_train={settings['max_train']}")
    result = malak_pipe.run(overrides)
    return {
        "fp32_test_top1": result["train"]["test_top1"],
        "int8_test_top1": result["qat"]["test_top1"],
        "int8_size_bytes": result["qat"]["size_bytes"],
        "run_dir": str(result.run_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="digits, one short epoch (seconds)")
    parser.add_argument("--pipeline", action="store_true", help="also run the same settings through malak_pipe.run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = settings_for(args.tiny)
    figures = {"dataset": settings["data"], "five_lines": five_lines(settings)}
    if args.pipeline:
        figures["pipeline"] = through_the_pipeline(settings)
    for path, numbers in figures.items():
        if isinstance(numbers, dict):
            print(f"{path:>10}: fp32 {numbers['fp32_test_top1']:.4f}  int8 {numbers['int8_test_top1']:.4f}  "
                  f"int8 file {numbers['int8_size_bytes']:,} bytes")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
