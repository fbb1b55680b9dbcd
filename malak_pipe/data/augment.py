"""Train-time augmentation on whole batches of tensors: random crop with padding, horizontal flip."""

from __future__ import annotations

import torch


def random_crop(x: torch.Tensor, padding: int, fill: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Pad each image by ``padding`` pixels of ``fill`` (per channel) and crop back at a random offset.

    One gather for the whole batch: every image gets its own offset in [0, 2 * padding].
    """
    if padding <= 0:
        return x
    count, channels, height, width = x.shape
    padded = fill.view(1, channels, 1, 1).expand(count, channels, height + 2 * padding, width + 2 * padding).clone()
    padded[:, :, padding : padding + height, padding : padding + width] = x
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator)
    rows = (offsets[0, :, None] + torch.arange(height))[:, :, None]
    cols = (offsets[1, :, None] + torch.arange(width))[:, None, :]
    batch = torch.arange(count)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def augment_batch(
    x: torch.Tensor,
    *,
    padding: int,
    hflip: bool,
    fill: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random crop (and flip when ``hflip``) of a batch N x C x H x W; shapes are unchanged."""
    x = random_crop(x, padding, fill, generator)
    return random_hflip(x, generator) if hflip else x
