"""A compact, exact and ``weights_only``-loadable encoding of a (quantized) ``state_dict``.

``torch.save(state_dict)`` stores every tensor as its own zip record (~150-250 bytes of zip,
alignment and pickle overhead each), and a per-channel int8 weight carries a float64 scale
and an int64 zero point per channel. For a small int8 CNN that is ~2% of the file. Here:

* every plain tensor goes, flattened, into one *pool* per dtype (one zip record per dtype);
* a quantized tensor is split into its integer representation (``int_repr``, into the int8,
  uint8 or int32 pool), its scales and its zero points. Per-channel scales go to the float32
  pool when every one of them is exactly a float32 (checked; otherwise to the float64 pool),
  zero points to the int64 pool unless they are all zero (symmetric weights: nothing stored).
  Per-tensor scale and zero point are plain Python numbers (a float64 and an int, exact);
* a symmetric per-channel qint8 tensor whose values all lie in [-8, 7] (a 4-bit weight) goes two
  values per byte into the ``nibbles`` pool (uint8; low nibble first, two's complement), which
  halves the bytes of 4-bit layers; any tensor in that range is encoded exactly this way;
* an index (names, shapes, offsets: plain Python tuples, lists, strings and ints) says where
  each entry lies; the state's ``_metadata`` (module versions) is kept as a plain dict.

:func:`unpack_state` rebuilds the quantized tensors from their integer representation
(``torch._make_per_tensor_quantized_tensor`` / ``torch._make_per_channel_quantized_tensor``),
so a model loaded from the packed state is bit-identical to the one that was packed. Values
that are not tensors (``torch.dtype`` of packed linear params, None, numbers) are kept as is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

_REPR_DTYPES = {torch.qint8: torch.int8, torch.quint8: torch.uint8, torch.qint32: torch.int32}
_PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric, torch.per_channel_affine_float_qparams)
NIBBLES = "nibbles"
"""The pool of 4-bit values, two per byte."""


def pack_nibbles(values: torch.Tensor) -> torch.Tensor:
    """Integers in [-8, 7] (any shape) as uint8 bytes, two per byte, low nibble first."""
    flat = values.reshape(-1).to(torch.int16)
    if flat.numel() and (int(flat.min()) < -8 or int(flat.max()) > 7):
        raise ValueError("values outside [-8, 7] do not fit a nibble")
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    nibbles = flat & 0xF
    return (nibbles[0::2] | (nibbles[1::2] << 4)).to(torch.uint8)


def unpack_nibbles(packed: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` int8 values of :func:`pack_nibbles`' bytes."""
    data = packed.to(torch.int16)
    pairs = torch.stack([data & 0xF, data >> 4], dim=1).reshape(-1)[:count]
    return ((pairs ^ 8) - 8).to(torch.int8)


def _fits_nibbles(tensor: torch.Tensor) -> bool:
    """A symmetric per-channel qint8 tensor with every value in [-8, 7] (a 4-bit weight)."""
    if tensor.dtype != torch.qint8 or tensor.qscheme() not in _PER_CHANNEL or tensor.numel() == 0:
        return False
    if tensor.q_per_channel_zero_points().any():
        return False
    values = tensor.int_repr()
    return int(values.min()) >= -8 and int(values.max()) <= 7


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype '{name}' in a packed state")
    return dtype


class _Pools:
    """Growing lists of flattened tensors, one per dtype; each added tensor gets its offset."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, tensor: torch.Tensor, name: str | None = None) -> tuple[str, int, list[int]]:
        name = name or _dtype_name(tensor.dtype)
        flat = tensor.detach().cpu().reshape(-1)
        offset = self.sizes.get(name, 0)
        self.parts.setdefault(name, []).append(flat)
        self.sizes[name] = offset + flat.numel()
        return name, offset, list(tensor.shape)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: torch.cat(parts) for name, parts in self.parts.items()}


def _exact_float32(values: torch.Tensor) -> torch.Tensor:
    """``values`` as float32 when that loses nothing, else unchanged (float64)."""
    narrow = values.to(torch.float32)
    return narrow if torch.equal(narrow.to(values.dtype), values) else values


def _encode_quantized(tensor: torch.Tensor, pools: _Pools) -> tuple[Any, ...]:
    qdtype = _dtype_name(tensor.dtype)
    if tensor.qscheme() in _PER_CHANNEL:
        nibbles = _fits_nibbles(tensor)
        if nibbles:
            data = (*pools.add(pack_nibbles(tensor.int_repr()), NIBBLES)[:2], list(tensor.shape))
        else:
            data = pools.add(tensor.int_repr())
        scales = pools.add(_exact_float32(tensor.q_per_channel_scales()))
        zero_points = tensor.q_per_channel_zero_points()
        zeros = None if not zero_points.any() else pools.add(zero_points)
        return ("qc4" if nibbles else "qc", data, qdtype, scales, zeros, tensor.q_per_channel_axis())
    data = pools.add(tensor.int_repr())
    return ("qt", data, qdtype, float(tensor.q_scale()), int(tensor.q_zero_point()))


def _encode(value: Any, pools: _Pools) -> tuple[Any, ...]:
    if isinstance(value, torch.Tensor):
        if value.is_quantized:
            return _encode_quantized(value, pools)
        return ("t", pools.add(value))
    if isinstance(value, tuple):
        return ("tuple", [_encode(item, pools) for item in value])
    return ("obj", value)


def pack_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The packed form of ``state_dict``: ``{"pools", "index", "metadata"}``, all weights_only-safe."""
    pools = _Pools()
    index = [(name, _encode(value, pools)) for name, value in state_dict.items()]
    metadata = getattr(state_dict, "_metadata", None)
    return {
        "pools": pools.tensors(),
        "index": index,
        "metadata": {key: dict(value) for key, value in metadata.items()} if metadata is not None else None,
    }


def _numel(shape: list[int]) -> int:
    numel = 1
    for size in shape:
        numel *= size
    return numel


def _slice(pools: dict[str, torch.Tensor], ref: Any) -> torch.Tensor:
    name, offset, shape = ref
    pool = pools[name]
    if pool.dtype != (torch.uint8 if name == NIBBLES else _dtype(name)):
        raise ValueError(f"the packed pool '{name}' holds {pool.dtype}")
    numel = (_numel(shape) + 1) // 2 if name == NIBBLES else _numel(shape)
    if offset < 0 or offset + numel > pool.numel():
        raise ValueError(f"a packed entry reaches past the end of the '{name}' pool")
    part = pool[offset : offset + numel].clone()
    return unpack_nibbles(part, _numel(shape)).reshape(shape) if name == NIBBLES else part.reshape(shape)


def _decode_quantized(spec: tuple[Any, ...], pools: dict[str, torch.Tensor]) -> torch.Tensor:
    if (spec[0] == "qc4") != (spec[1][0] == NIBBLES):
        raise ValueError("a 4-bit entry outside the nibbles pool, or an 8-bit one inside it")
    data = _slice(pools, spec[1])
    qdtype = _dtype(spec[2])
    if _REPR_DTYPES.get(qdtype) != data.dtype:
        raise ValueError(f"a {qdtype} tensor cannot have a {data.dtype} representation")
    if spec[0] == "qt":
        _, _, _, scale, zero_point = spec
        return torch._make_per_tensor_quantized_tensor(data, scale, zero_point)
    _, _, _, scales_ref, zeros_ref, axis = spec
    scales = _slice(pools, scales_ref).to(torch.float64)
    zeros = torch.zeros(scales.shape, dtype=torch.int64) if zeros_ref is None else _slice(pools, zeros_ref)
    return torch._make_per_channel_quantized_tensor(data, scales, zeros, axis)


def _decode(spec: tuple[Any, ...], pools: dict[str, torch.Tensor]) -> Any:
    kind = spec[0]
    if kind == "t":
        return _slice(pools, spec[1])
    if kind in ("qt", "qc", "qc4"):
        return _decode_quantized(spec, pools)
    if kind == "tuple":
        return tuple(_decode(item, pools) for item in spec[1])
    if kind == "obj":
        return spec[1]
    raise ValueError(f"unknown packed entry kind '{kind}'")


def unpack_state(packed: dict[str, Any]) -> OrderedDict[str, Any]:
    """The ``state_dict`` that :func:`pack_state` packed (ValueError when ``packed`` is malformed)."""
    try:
        pools, index, metadata = packed["pools"], packed["index"], packed["metadata"]
        state: OrderedDict[str, Any] = OrderedDict((name, _decode(spec, pools)) for name, spec in index)
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"malformed packed state ({type(exc).__name__}: {exc})") from None
    if metadata is not None:
        state._metadata = OrderedDict((key, dict(value)) for key, value in metadata.items())  # type: ignore[attr-defined]
    return state
