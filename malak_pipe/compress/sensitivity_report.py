"""The sensitivity table as text and as a plot (val drop vs bytes saved per layer).

``SENSITIVITY_PLOT`` is the artifact type of the sensitivity stage's plot: saving renders the
table (:func:`malak_pipe.compress.sensitivity.measure_sensitivity` rows with ``bytes_saved``)
as a PNG, one marker per layer and clip; loading checks the file is a PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from malak_pipe.artifacts import ArtifactType
from malak_pipe.errors import ArtifactError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLUMNS = ("layer", "kind", "clip", "params", "bytes_saved", "val_drop_pp", "kl", "weight_error")


def markdown_table(table: dict[str, Any]) -> str:
    """The rows as a markdown table (drops in pp, KL in nats, weight error relative)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table["layers"]:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def clip_summary(table: dict[str, Any]) -> dict[str, float]:
    """Mean val drop, KL and weight error of the layers at 4 bits, per clip (``mean_<figure>_<clip>``)."""
    summary: dict[str, float] = {}
    for clip in sorted({row["clip"] for row in table["layers"]}):
        rows = [row for row in table["layers"] if row["clip"] == clip]
        for figure in ("val_drop_pp", "kl", "weight_error"):
            summary[f"mean_{figure}_{clip}"] = sum(row[figure] for row in rows) / len(rows)
    return summary


def save_plot(table: dict[str, Any], path: Path) -> None:
    """Val accuracy drop against bytes saved, per layer at 4 bits (one series per clip)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for marker, clip in zip("os^", sorted({row["clip"] for row in table["layers"]}), strict=False):
        rows = [row for row in table["layers"] if row["clip"] == clip]
        ax.scatter([r["bytes_saved"] for r in rows], [r["val_drop_pp"] for r in rows], marker=marker, label=clip)
        for row in rows:
            ax.annotate(row["layer"], (row["bytes_saved"], row["val_drop_pp"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel("firmware weight bytes saved at 4 bits")
    ax.set_ylabel("val top-1 drop vs int8 (pp)")
    ax.set_title("each layer alone at 4 bits")
    ax.grid(alpha=0.3)
    ax.legend(title="clip")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def load_plot(path: Path) -> Path:
    """The plot's path, after checking it is a PNG file."""
    try:
        head = Path(path).read_bytes()[: len(PNG_SIGNATURE)]
    except OSError as exc:
        raise ArtifactError(f"cannot read the plot: {exc}", path=str(path)) from None
    if head != PNG_SIGNATURE:
        raise ArtifactError("not a PNG file", path=str(path), hint="wire the plot output of a sensitivity node")
    return Path(path)


SENSITIVITY_PLOT = ArtifactType(name="sensitivity_plot", suffix=".png", save=save_plot, load=load_plot)
