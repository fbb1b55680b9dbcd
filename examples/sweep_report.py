"""A sweep over seeds and pruning sparsities, and its mean ± std report, all from Python.

    python examples/sweep_report.py            # 3 seeds x 2 sparsities of SimpleCNN on digits
    python examples/sweep_report.py --tiny     # 2 seeds x 2 sparsities, one short epoch

Each job is one ``malak_pipe.run`` (the baseline is trained once per seed and shared by both
sparsities through the cache); malak-report's functions then group the jobs by their
overrides except the seed and write report.md / .csv / .json / .tex. The shell equivalent is

    malak-run -m seed=0,1,2 stage.prune_magnitude.sparsity=0.5,0.8 run.only=[prune_magnitude]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ["test_top1", "test_top1_drop_vs_baseline_pp", "sparsity"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2 seeds, one short epoch")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "sweep_report")
    parser.add_argument("--json", type=Path, help="write the aggregated figures here")
    args = parser.parse_args()

    import malak_pipe
    from malak_pipe.report.aggregate import aggregate, load_job
    from malak_pipe.report.tables import select, to_markdown, write_tables

    seeds = (0, 1) if args.tiny else (0, 1, 2)
    epochs = ["stage.train.epochs=1", "stage.prune_magnitude.finetune.epochs=1"] if args.tiny else []
    jobs = []
    for seed in seeds:
        for sparsity in (0.5, 0.8):
            overrides = [f"seed={seed}", f"stage.prune_magnitude.sparsity={sparsity}", "run.only=[prune_magnitude]"]
            result = malak_pipe.run([*overrides, *epochs])
            if not result.ok:
                raise SystemExit(f"job {overrides} failed: see {result.run_dir}")
            jobs.append(load_job(result.run_dir / "results.json"))
    stats = select(aggregate(jobs), METRICS, ["prune_magnitude"])
    written = write_tables(stats, args.out, ["md", "csv", "json", "tex"])
    print(to_markdown(stats))
    print(f"report: {', '.join(str(path) for path in written.values())}")
    if args.json:
        args.json.write_text(json.dumps([stat.as_dict() for stat in stats], indent=1))


if __name__ == "__main__":
    main()
