"""Which layers eager-mode quantization may fuse: conv-bn(-relu), conv-relu, linear-relu (2-D and 1-D convs).

Patterns are searched only inside ``nn.Sequential`` containers, whose children run in order,
so a ReLU that follows a residual add (outside the Sequential) is never fused by mistake.
"""

from __future__ import annotations

from torch import nn

_PATTERNS: tuple[tuple[type[nn.Module], ...], ...] = (
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv2d, nn.ReLU),
    (nn.Conv1d, nn.BatchNorm1d, nn.ReLU),
    (nn.Conv1d, nn.BatchNorm1d),
    (nn.Conv1d, nn.ReLU),
    (nn.Linear, nn.BatchNorm1d),
    (nn.Linear, nn.ReLU),
)


def _match(children: list[tuple[str, nn.Module]], start: int) -> int:
    for pattern in _PATTERNS:
        window = children[start : start + len(pattern)]
        if len(window) == len(pattern) and all(type(m) is t for (_, m), t in zip(window, pattern, strict=True)):
            return len(pattern)
    return 0


def fusion_groups(module: nn.Module) -> list[list[str]]:
    """Lists of module names for ``torch.ao.quantization.fuse_modules(module, groups)``.

    Exact types only (a ReLU6 or SiLU is not fusable by torch.ao and is left alone).
    """
    groups: list[list[str]] = []
    for prefix, container in module.named_modules():
        if not isinstance(container, nn.Sequential):
            continue
        children = list(container.named_children())
        index = 0
        while index < len(children):
            length = _match(children, index)
            if length:
                dotted = f"{prefix}." if prefix else ""
                groups.append([dotted + name for name, _ in children[index : index + length]])
                index += length
            else:
                index += 1
    return groups
