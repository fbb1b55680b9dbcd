"""The aggregator on synthetic result files: numbers checked by hand."""

from __future__ import annotations

import json
import math

import pytest

from malak_pipe.errors import DataError
from malak_pipe.report.aggregate import aggregate, find_results, load_job
from malak_pipe.report.cli import main
from malak_pipe.report.tables import to_csv, to_latex, to_markdown


def write_job(root, name, seed, overrides, metrics):
    job = root / name
    job.mkdir(parents=True)
    nodes = {"train": {"stage": "train", "status": "ok", "metrics": metrics}}
    run = {"name": "exp", "seed": seed, "overrides": overrides}
    (job / "results.json").write_text(json.dumps({"run": run, "nodes": nodes}))
    return job


@pytest.fixture
def sweep(tmp_path):
    for i, (seed, lr, acc) in enumerate([(0, "0.1", 0.90), (1, "0.1", 0.92), (2, "0.1", 0.94), (0, "0.01", 0.80)]):
        write_job(tmp_path, str(i), seed, [f"seed={seed}", f"stage.train.lr={lr}"], {"test_top1": acc, "params": 10})
    write_job(tmp_path, "4", 1, ["seed=1", "stage.train.lr=0.01"], {"params": 10})  # test_top1 missing
    return tmp_path


def test_groups_ignore_the_seed_and_stats_match_hand_computation(sweep):
    stats = {(s.group, s.metric): s for s in aggregate([load_job(p) for p in find_results([sweep])])}
    s = stats[("stage.train.lr=0.1", "test_top1")]
    assert s.n == 3 and s.seeds == [0, 1, 2]
    assert s.mean == pytest.approx(0.92)
    assert s.std == pytest.approx(0.02)  # sample std of 0.90, 0.92, 0.94
    assert s.ci95 == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    low = stats[("stage.train.lr=0.01", "test_top1")]
    assert low.n == 1 and len(low.missing_in) == 1  # reported, not crashed
    assert low.ci95 == 0.0


def test_writers(sweep):
    stats = aggregate([load_job(p) for p in find_results([sweep])])
    md = to_markdown(stats)
    assert "92.00 ± 2.00" in md and "(missing in 1)" in md
    assert to_csv(stats).splitlines()[0] == "group,node,metric,n,mean,std,ci95_low,ci95_high"
    assert r"$\pm$" in to_latex(stats)


def test_cli_writes_every_format(sweep, capsys):
    assert main([str(sweep), "--metrics", "test_top1"]) == 0
    for fmt in ("md", "csv", "json", "tex"):
        assert (sweep / "report" / f"report.{fmt}").stat().st_size > 0
    rows = json.loads((sweep / "report" / "report.json").read_text())
    assert {r["metric"] for r in rows} == {"test_top1"}
    assert "5 job(s), 2 group(s)" in capsys.readouterr().out


def test_missing_dir_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such run directory"):
        find_results([tmp_path / "nope"])
    with pytest.raises(DataError, match="no results.json"):
        find_results([tmp_path])


def test_pareto_front_and_png(sweep, tmp_path):
    from malak_pipe.report.plots import pareto_front, write_plots

    assert pareto_front([(1, 90), (2, 95), (3, 94), (0.5, 80)]) == [3, 0, 1]
    jobs = [load_job(p) for p in find_results([sweep])]
    for job, size in zip(jobs, (100, 200, 300, 400, 500), strict=False):
        job.nodes["train"]["metrics"]["size_bytes"] = size
    written = write_plots(jobs, aggregate(jobs), tmp_path / "plots")
    png = written["accuracy_vs_size_bytes"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_page_with_reference(sweep, tmp_path):
    ref = tmp_path / "paper.json"
    ref.write_text(json.dumps({"source": "the paper, Table V", "nodes": {"train": {"test_top1": 0.9219}}}))
    page = tmp_path / "results.md"
    assert main([str(sweep), "--quiet", "--page", str(page), "--reference", str(ref), "--columns", "test_top1"]) == 0
    text = page.read_text()
    assert "| stage.train.lr=0.1 | train | 92.00 ± 2.00 | 92.19 | 3 |" in text
    assert "the paper, Table V" in text and "malak-report" in text
