"""malak-report: turn results.json files (a run, or a whole multirun) into tables and plots."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from malak_pipe.errors import ConfigError
from malak_pipe.report.aggregate import aggregate, find_results, load_job
from malak_pipe.report.tables import WRITERS, select, to_markdown, write_tables


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="malak-report",
        description="Aggregate malak-run results over seeds: mean ± std, n, 95%% CI (Student t).",
        epilog="Example: malak-report outputs/multirun/smoke/2026-11-21_10-00-00 --metrics test_top1",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="run or multirun directories, or results.json files")
    parser.add_argument("--out", type=Path, help="where to write report.* (default: the first path)")
    parser.add_argument("--metrics", help="comma-separated metric names to keep (default: all scalars)")
    parser.add_argument("--nodes", help="comma-separated node names to keep (default: all)")
    parser.add_argument("--formats", default="md,csv,json,tex", help="any of md,csv,json,tex (default: all)")
    parser.add_argument("--plots", action="store_true", help="also draw accuracy/size/latency plots (PNG)")
    parser.add_argument("--quiet", action="store_true", help="do not print the Markdown table")
    parser.add_argument("--page", type=Path, help="also write a one-table results page (Markdown) here")
    parser.add_argument("--columns", help="metrics of the page's table (default: accuracy, drop, size, ...)")
    parser.add_argument("--reference", type=Path, help="JSON of reference figures shown beside the page's")
    parser.add_argument("--title", default="Results", help="the page's title")
    parser.add_argument("--made-with", help="the command that produced the runs, quoted on the page")
    return parser


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _write_page(args: argparse.Namespace, stats, argv: list[str]) -> Path:
    from malak_pipe.report.page import DEFAULT_COLUMNS, load_reference, write_page

    reference = load_reference(args.reference) if args.reference else None
    command = shlex.join(["malak-report", *argv])
    columns = _split(args.columns) or DEFAULT_COLUMNS
    return write_page(args.page, stats, columns, reference, args.title, command, made_with=args.made_with)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    formats = _split(args.formats) or []
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ConfigError(f"unknown format(s) {unknown}", path="--formats", hint=f"use any of {', '.join(WRITERS)}")
    jobs = [load_job(path) for path in find_results(args.paths)]
    stats = select(aggregate(jobs), _split(args.metrics), _split(args.nodes))
    out_dir = args.out or (args.paths[0] if args.paths[0].is_dir() else args.paths[0].parent)
    out_dir = out_dir / "report" if args.out is None else out_dir
    written = write_tables(stats, out_dir, formats)
    if args.plots:
        from malak_pipe.report.plots import write_plots

        written.update(write_plots(jobs, stats, out_dir))
    if args.page:
        written["page"] = _write_page(args, stats, argv)
    if not args.quiet:
        print(to_markdown(stats))
    groups = len({s.group for s in stats})
    print(f"{len(jobs)} job(s), {groups} group(s); wrote {', '.join(map(str, written.values()))}")
    return 0
