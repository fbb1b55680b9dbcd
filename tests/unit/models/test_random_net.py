"""The random-network generator as a factory model: any input shape, trainable, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from malak_pipe.models import random_net


@pytest.mark.parametrize("seed", range(8))
def test_build_takes_the_given_input_shape_and_is_deterministic(seed):
    shape = random_net.draw_input_shape(np.random.default_rng(seed))
    square = shape if len(shape) == 2 else (shape[0], shape[1], shape[1])
    model = random_net.build(seed=seed, input_shape=list(square), num_classes=7)
    assert model.training
    x = torch.randn(3, *square)
    model.eval()
    out = model(x)
    assert out.shape == (3, 7)
    again = random_net.build(seed=seed, input_shape=square, num_classes=7).eval()
    assert torch.equal(again(x), out)
    assert random_net.describe(seed, square, 7).startswith(f"seed {seed}: {len(square) - 1}-D")


def test_a_shape_that_is_neither_image_nor_signal_is_refused():
    with pytest.raises(ValueError, match="neither"):
        random_net.build(seed=0, input_shape=(1, 2, 3, 4))
