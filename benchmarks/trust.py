"""The cache's promise, measured on the default pipeline through the real CLI.

    python benchmarks/trust.py --out benchmarks/results/trust.json

1. identity: two clean runs (separate caches) -> how many nodes' outputs have equal sha256;
2. kill -9: a run killed at several moments (inside different stages), each resumed to the end
   -> how many resumes give the clean run's output sha256 for every node (profile excepted:
   its report is timings);
3. a user's factory model edited between two runs -> whether train was recomputed;
4. what the code fingerprint costs a fully cached run (CPU seconds in a fresh interpreter),
   and the wall time of that run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from malak_cli import MALAK_RUN, malak_run, nodes  # noqa: E402

TIMING_NODES = {"profile"}  # its report is wall-clock figures by design
# in the default pipeline's order, so each launch is killed in a node it computes
KILLS = [("train", 0.5), ("export_onnx", 0.3), ("prune_structured", 0.2), ("codegen", 0.2), ("sim_run", 0.2)]


def output_hashes(run_dir: Path) -> dict[str, dict[str, str]]:
    found = {}
    for result in sorted(run_dir.glob("*/result.json")):
        res = json.loads(result.read_text())
        found[res["node"]] = {name: rec["sha256"] for name, rec in res["outputs"].items()}
    return found


def identity(work: Path) -> tuple[dict, dict[str, dict[str, str]]]:
    runs = [malak_run([], work, work / f"clean{i}", cache_dir=work / f"cache{i}") for i in (0, 1)]
    a, b = (output_hashes(r.path) for r in runs)
    compared = sorted(set(a) - TIMING_NODES)
    same = [n for n in compared if a[n] == b.get(n)]
    figures = {
        "nodes_compared": len(compared),
        "nodes_identical": len(same),
        "differing": sorted(set(compared) - set(same)),
        "profile_identical": a.get("profile") == b.get("profile"),
        "cold_run_wall_s": round(runs[0].wall_s, 2),
    }
    return figures, a


def kill_during(work: Path, cache: Path, node: str, delay: float) -> bool:
    """Launch the default pipeline and SIGKILL its process group ``delay`` s into ``node``;
    whether the kill landed before the node finished."""
    env = dict(os.environ, MALAK_CACHE_DIR=str(cache), COLUMNS="200")
    proc = subprocess.Popen(
        [str(MALAK_RUN), f"hydra.run.dir={work / f'killed-{node}'}"], cwd=work, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    landed = False
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(f"[{node}] running"):
            time.sleep(delay)
            landed = True
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)
    return landed


def kills(work: Path, clean: dict[str, dict[str, str]]) -> dict:
    """A chain of kills through the pipeline: each launch resumes the previous kill and is killed
    in a later node (so that node is computing, not cached); after each kill a copy of the cache
    is resumed to the end and its outputs compared with the clean run's."""
    cache = work / "kill-cache"
    rows = []
    for index, (node, delay) in enumerate(KILLS):
        landed = kill_during(work, cache, node, delay)
        copy = work / f"kill-cache-{index}"
        shutil.copytree(cache, copy, symlinks=True)
        resumed = malak_run([], work, work / f"resumed{index}", cache_dir=copy)
        got = output_hashes(resumed.path)
        statuses = {n: r["status"] for n, r in nodes(resumed.path).items()}
        identical = all(got.get(n) == clean[n] for n in clean if n not in TIMING_NODES)
        rows.append({"killed_in": node, "delay_s": delay, "landed_before_node_end": landed,
                     "recomputed_on_resume": sorted(n for n, s in statuses.items() if s == "ok"),
                     "identical": identical})
    leftovers = sum(1 for i in range(len(KILLS)) for _ in (work / f"kill-cache-{i}" / "tmp").glob("*"))
    return {"kills": rows, "resumes_identical": sum(r["identical"] for r in rows), "moments": len(rows),
            "staging_leftovers_after_resume": leftovers}


MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, {width}, 3, padding=1)
        self.head = nn.Linear({width}, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))
"""


def user_model_edit(work: Path) -> dict:
    (work / "my_model.py").write_text(MODEL.format(width=40))
    args = ["+experiment=smoke", "model.name=factory", "model.factory=my_model:Net"]
    env = {"PYTHONPATH": str(work)}
    first = malak_run(args, work, work / "user0", cache_dir=work / "user-cache", env=env)
    (work / "my_model.py").write_text(MODEL.format(width=48))
    second = malak_run(args, work, work / "user1", cache_dir=work / "user-cache", env=env)
    a, b = nodes(first.path)["train"], nodes(second.path)["train"]
    return {"params_before": a["metrics"]["params"], "params_after": b["metrics"]["params"],
            "train_status_after_edit": b["status"], "train_recomputed": b["status"] == "ok"}


PROBE = """
import time, json, sys
from hydra import compose, initialize_config_module
from malak_pipe.engine.config import to_run_config
from malak_pipe.engine.graph import build_graph
from malak_pipe.engine.code import code_fingerprint
with initialize_config_module(config_module="malak_pipe.conf", version_base="1.3"):
    cfg = compose(config_name="config")
graph = build_graph(*to_run_config(cfg))
start = time.process_time()
for node in graph.nodes.values():
    code_fingerprint(node.stage, node.config)
print(json.dumps({"nodes": len(graph.nodes), "cpu_s": time.process_time() - start}))
"""


def hashing_cost(work: Path) -> dict:
    best = min(
        (json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                                   cwd=work).stdout) for _ in range(3)),
        key=lambda r: r["cpu_s"],
    )
    cached = malak_run([], work, work / "cached", cache_dir=work / "cache0")
    statuses = {r["status"] for r in nodes(cached.path).values()}
    return {"code_fingerprint_cpu_s": round(best["cpu_s"], 4), "nodes": best["nodes"],
            "fully_cached_run_wall_s": round(cached.wall_s, 2), "fully_cached_run_cpu_s": round(cached.cpu_s, 2),
            "fully_cached_statuses": sorted(statuses)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="malak-trust-") as tmp:
        work = Path(tmp)
        same, clean = identity(work)
        report = {
            "identity": same,
            "kill_9": kills(work, clean),
            "user_model_edit": user_model_edit(work),
            "hashing": hashing_cost(work),
            "machine_load_1min": os.getloadavg()[0],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
