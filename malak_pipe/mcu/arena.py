"""Static arena planning: buffer lifetimes from the schedule, offsets packed greedily.

Each buffer is live from the step that writes it to the last step that reads it
(inclusive). Buffers are placed largest first at the lowest offset where they overlap no
already placed buffer whose lifetime intersects theirs (first fit). The peak is reported next
to the lower bound any plan must reach: the largest total of buffers live at one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Buffer:
    """A region of the arena: written at step ``first``, last read at step ``last``."""

    name: str
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class ArenaPlan:
    """Offsets by buffer name (and of each alias: the offset of the buffer it shares), the arena
    size and the lower bound of any plan."""

    buffers: tuple[Buffer, ...]
    offsets: dict[str, int]
    size: int
    lower_bound: int
    alignment: int
    aliases: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "arena_bytes": self.size,
            "lower_bound_bytes": self.lower_bound,
            "alignment": self.alignment,
            "buffers": [
                {"name": b.name, "offset": self.offsets[b.name], "size": b.size, "first": b.first, "last": b.last}
                for b in sorted(self.buffers, key=lambda b: self.offsets[b.name])
            ],
            "aliases": self.aliases,
        }


def align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def plan_arena(buffers: list[Buffer], alignment: int = 8, aliases: dict[str, str] | None = None) -> ArenaPlan:
    """Greedy-by-size, first-fit placement; no two buffers live at the same step overlap.

    ``aliases``: names placed at the offset of the buffer they share (an output written over its input).
    """
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        raise ValueError("buffer names must be unique")
    for b in buffers:
        if b.size < 0 or b.first > b.last:
            raise ValueError(f"buffer {b.name}: size {b.size}, lifetime [{b.first}, {b.last}] is not valid")
    offsets: dict[str, int] = {}
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.name)):
        size = align_up(buf.size, alignment)
        busy = sorted(
            (offsets[p.name], offsets[p.name] + align_up(p.size, alignment)) for p in placed if p.overlaps_in_time(buf)
        )
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[buf.name] = offset
        placed.append(buf)
    total = max((offsets[b.name] + align_up(b.size, alignment) for b in buffers), default=0)
    aliases = dict(aliases or {})
    offsets.update({alias: offsets[target] for alias, target in aliases.items()})
    return ArenaPlan(tuple(buffers), offsets, total, live_lower_bound(buffers, alignment), alignment, aliases)


def live_bytes(buffers: list[Buffer], step: int, alignment: int = 8) -> int:
    """The total size of the buffers live at ``step``."""
    return sum(align_up(b.size, alignment) for b in buffers if b.first <= step <= b.last)


def live_lower_bound(buffers: list[Buffer], alignment: int = 8) -> int:
    """The largest total size of the buffers live at one step."""
    steps = {b.first for b in buffers} | {b.last for b in buffers}
    return max((live_bytes(buffers, s, alignment) for s in steps), default=0)


def check_plan(plan: ArenaPlan) -> None:
    """Raise ValueError if two buffers live at the same step share a byte."""
    items = list(plan.buffers)
    for i, a in enumerate(items):
        a_start, a_end = plan.offsets[a.name], plan.offsets[a.name] + a.size
        if a_end > plan.size:
            raise ValueError(f"buffer {a.name} ends at {a_end}, past the arena ({plan.size})")
        for b in items[i + 1 :]:
            b_start, b_end = plan.offsets[b.name], plan.offsets[b.name] + b.size
            if a.overlaps_in_time(b) and a_start < b_end and b_start < a_end and a.size and b.size:
                raise ValueError(
                    f"live buffers {a.name} [{a_start}, {a_end}) and {b.name} [{b_start}, {b_end}) overlap"
                )
