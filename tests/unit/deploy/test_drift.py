"""Drift: divergences, the reference, shifted batches flagged and clean ones not, the CLI, the stage."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from malak_pipe.cli.drift import main
from malak_pipe.deploy.drift import Histogram, build_reference, check_drift, load_reference, save_reference
from malak_pipe.deploy.drift_inputs import prepare_inputs
from malak_pipe.deploy.drift_shifts import add_noise, prior_shift_indices, shift_brightness
from malak_pipe.deploy.drift_stats import kl_divergence, psi
from malak_pipe.deploy.onnx_export import export_onnx, torch_logits
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ArtifactError, DataError
from malak_pipe.stages.drift import Drift

torch.set_num_threads(1)


def test_smoothed_divergences_stay_finite_with_empty_bins():
    new, ref = np.array([10.0, 0.0, 0.0]), np.array([0.0, 5.0, 5.0])
    assert np.isfinite(psi(new, ref)) and np.isfinite(kl_divergence(new, ref)) and psi(new, ref) > 1.0
    same = np.array([3.0, 0.0, 7.0])
    assert psi(same, same) == pytest.approx(0.0) and kl_divergence(same, same) == pytest.approx(0.0)
    assert psi(new, ref) == pytest.approx(kl_divergence(new, ref) + kl_divergence(ref, new))


def test_histogram_counts_values_outside_the_reference_range():
    hist = Histogram(np.array([-np.inf, 0.0, 1.0, np.inf]), np.zeros(3))
    assert hist.count(np.array([-5.0, 0.0, 0.5, 1.0, 7.0])).tolist() == [1, 2, 2]


@pytest.fixture(scope="module")
def reference(digits, trained):
    return build_reference(digits.train.x.numpy(), torch_logits(trained, digits.train.x.numpy()),
                           mean=digits.mean, std=digits.std)  # fmt: skip


def _check(reference, trained, x):
    return check_drift(reference, x, torch_logits(trained, x))


def test_clean_held_out_data_is_quiet_and_shifts_are_flagged(reference, digits, trained):
    x, y = digits.test.x.numpy(), digits.test.y.numpy()
    clean = _check(reference, trained, x)
    assert not clean.drift and clean.reasons == []
    bright = _check(reference, trained, shift_brightness(x, 0.3, digits.std))
    assert bright.drift and any("channel 0 pixels" in r for r in bright.reasons)
    assert bright.channel_mean_shift[0] > 0.5
    noisy = _check(reference, trained, add_noise(x, 0.1, digits.std))
    assert noisy.drift
    prior = _check(reference, trained, x[prior_shift_indices(y, 0.2)])
    assert prior.drift and any("predicted classes" in r for r in prior.reasons)
    assert not _check(reference, trained, digits.val.x.numpy()).drift


def test_reference_round_trip_and_bad_files(reference, tmp_path):
    path = tmp_path / "ref.json"
    save_reference(reference, path)
    loaded = load_reference(path)
    assert loaded.input_shape == (1, 8, 8) and loaded.grid == (4, 4)
    assert np.array_equal(loaded.channel_hist[0].edges, reference.channel_hist[0].edges)
    (tmp_path / "bad.json").write_text('{"format": 99}')
    with pytest.raises(ArtifactError, match="bad.json"):
        load_reference(tmp_path / "bad.json")


def test_wrong_shapes_and_tiny_batches_are_refused(reference, digits):
    with pytest.raises(DataError, match="expected"):
        check_drift(reference, np.zeros((40, 3, 8, 8)), np.zeros((40, 10)))
    with pytest.raises(DataError, match="too few"):
        check_drift(reference, digits.test.x.numpy()[:5], np.zeros((5, 10)))
    with pytest.raises(DataError, match="do not fit"):
        prepare_inputs(np.zeros((4, 9, 9)), (1, 8, 8), (0.0,), (1.0,))


def _raw_digits(digits, x):
    """Normalized images back to raw [0, 1] pixels (what a deployed system would capture)."""
    return (x * digits.std[0] + digits.mean[0]).astype(np.float32)


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, reference, digits, trained):
    root = tmp_path_factory.mktemp("cli")
    save_reference(reference, root / "ref.json")
    export_onnx(trained, (1, 8, 8), root / "model.onnx")
    raw = _raw_digits(digits, digits.test.x.numpy())
    np.save(root / "clean.npy", raw[:, 0])  # N x H x W
    np.savez(root / "bright.npz", images=np.clip(raw + 0.3, 0, None))
    with gzip.open(root / "clean-idx3-ubyte.gz", "wb") as handle:  # IDX, uint8 0..255
        u8 = np.round(raw[:, 0] * 255).clip(0, 255).astype(np.uint8)
        handle.write(struct.pack(">BBBB3I", 0, 0, 0x08, 3, *u8.shape) + u8.tobytes())
    np.save(root / "wrong.npy", np.zeros((40, 3, 5, 5), dtype=np.float32))
    (root / "junk.npy").write_bytes(b"not numpy")
    (root / "junk.onnx").write_bytes(b"not onnx")
    return root


def test_cli_exit_codes(cli_files, capsys):
    f = cli_files
    base = ["check", "--reference", str(f / "ref.json"), "--model", str(f / "model.onnx"), "--inputs"]
    assert main([*base, str(f / "clean.npy")]) == 0
    assert main([*base, str(f / "clean-idx3-ubyte.gz")]) == 0
    assert main([*base, str(f / "bright.npz"), "--json", str(f / "report.json")]) == 1
    assert "DRIFT" in capsys.readouterr().out and (f / "report.json").is_file()
    assert main([*base, str(f / "wrong.npy")]) == 2
    assert "do not fit" in capsys.readouterr().err
    assert main([*base, str(f / "junk.npy")]) == 2
    assert "not a readable .npy" in capsys.readouterr().err
    bad_model = ["check", "--reference", str(f / "ref.json"), "--model", str(f / "junk.onnx"), "--inputs"]
    assert main([*bad_model, str(f / "clean.npy")]) == 2
    err = capsys.readouterr().err
    assert "junk.onnx" in err and "Traceback" not in err


def test_drift_stage_builds_and_self_checks(artifacts, tmp_path):
    result, outputs = run_stage(Drift, {}, {"model": artifacts["torch_model"], "data": artifacts["dataset"]}, tmp_path)
    m = result.metrics
    assert m["self_check_ok"] and not m["drift_clean"]
    assert m["drift_brightness"] and m["drift_noise"] and m["drift_prior_shift"]
    assert load_reference(outputs["reference"]).n_inputs == m["reference_samples"]
    assert not result.warnings
