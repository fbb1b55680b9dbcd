"""``malak-cache``: look after the stage cache (info, verify, gc).

    malak-cache info                          entries and bytes, by stage
    malak-cache verify                        re-hash every entry; damaged ones are moved aside (exit 1)
    malak-cache gc --keep outputs/runs        what would go: entries no run under outputs/runs uses
    malak-cache gc --older-than 30d --yes     delete entries unused for 30 days

The cache is the one malak-run uses: ``--dir``, else MALAK_CACHE_DIR, else outputs/cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from malak_pipe.engine import cache_tools
from malak_pipe.engine.store import Cache
from malak_pipe.errors import ConfigError, MalakError


def _cache(args: argparse.Namespace) -> Cache:
    chosen = args.dir or os.environ.get("MALAK_CACHE_DIR") or "outputs/cache"
    root = Path(chosen).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"no cache directory at {root}", path="--dir", hint="pass --dir or set MALAK_CACHE_DIR")
    return Cache(root)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_info(args: argparse.Namespace) -> int:
    report = cache_tools.info(_cache(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['root']}: {report['entries']} entries, {_mb(report['bytes'])}")
    for stage, row in report["by_stage"].items():
        print(f"  {stage:<20} {row['entries']:>5} entries  {_mb(row['bytes']):>10}")
    print(f"  staging leftovers: {report['staging_leftovers']}, quarantined: {report['quarantined']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = cache_tools.verify(_cache(args))
    for key, reason, aside in report.corrupted:
        print(f"corrupted {key[:12]}: {reason} -> moved to {aside}")
    for key in report.busy:
        print(f"in use, not checked: {key[:12]}")
    print(f"{report.checked} entries checked, {len(report.corrupted)} corrupted")
    return 1 if report.corrupted else 0


def cmd_gc(args: argparse.Namespace) -> int:
    cache = _cache(args)
    keep_seconds = cache_tools.parse_duration(args.older_than) if args.older_than else None
    plan = cache_tools.plan_gc(cache, [Path(p) for p in args.keep], keep_seconds)
    if not args.yes:
        for entry in plan.delete:
            print(f"would delete {entry.key[:12]} ({entry.stage}, {_mb(entry.bytes)})")
        print(f"dry run: {len(plan.delete)} entries ({_mb(plan.bytes)}) would go, {plan.keep} kept, "
              f"{len(plan.leftovers)} staging leftovers; add --yes to delete")
        return 0
    done = cache_tools.run_gc(cache, plan)
    for key in done.busy:
        print(f"in use, kept: {key[:12]}")
    print(f"deleted {len(done.delete)} entries ({_mb(done.bytes)}), kept {done.keep}, "
          f"removed {len(done.leftovers)} staging leftovers")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="malak-cache", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", help="the cache directory (default: MALAK_CACHE_DIR, else outputs/cache)")
    sub = ap.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="entries and bytes, by stage")
    info.add_argument("--json", action="store_true", help="print the figures as JSON")
    info.set_defaults(run=cmd_info)
    sub.add_parser("verify", help="re-hash every entry; move damaged ones aside; exit 1 if any").set_defaults(
        run=cmd_verify
    )
    gc = sub.add_parser("gc", help="remove entries nothing keeps (dry run unless --yes)")
    gc.add_argument("--keep", action="append", default=[], metavar="RUN_DIR",
                    help="keep the entries the result.json files under this run or sweep dir use (repeatable)")
    gc.add_argument("--older-than", metavar="AGE", help="also keep entries used within AGE (30d, 12h, 2w)")
    gc.add_argument("--yes", action="store_true", help="delete (without it, only show what would go)")
    gc.set_defaults(run=cmd_gc)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        sys.exit(args.run(args))
    except MalakError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        sys.exit(exc.exit_code)
