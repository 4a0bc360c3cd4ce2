"""Record chapter 5's round-2 protocol at the full scale (claims C25 and C26, every radius).

    make bandits-full                       # the full recipe, recorded to data/bandits/
    python benchmarks/bandits.py [--scale quick|full] [--record]

Runs :func:`bayes_at_scale.experiments.the_causal_stage.run_protocol` with the recipe of
``--scale`` (default full: Riquelme et al.'s network schedule, the ablations on all three
environments and the wheel sweep over five radii, 10 seeds each) on ``ESSAY_WORKERS`` processes
(default: every core), and writes its summary - every run's final regret and rim share, and
C25's and C26's pooled statistics - with the command line, scale, seeds, torch version, machine
and wall time, as JSON to ``_build/bandits/protocol_<scale>.json``, or, with ``--record``, to
``data/bandits/protocol_<scale>.json`` with its checksum in ``data/bandits/SHA256SUMS``: the
recorded measurement chapter 5 shows beside its quick run.  Slow on a laptop (the full recipe
is about 300 runs of 2,000 rounds); made for a machine with many cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from bayes_at_scale.core import measurements, settings
from bayes_at_scale.experiments import the_causal_stage as experiment

ROOT = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument("--record", action="store_true",
                        help="write to data/bandits/ with its checksum (what chapter 5 reads)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict:
    args = parse(argv)
    config = settings.configure()
    recipe = experiment.protocol_recipe(args.scale)
    seeds = config.seeds(recipe.n_seeds)
    start = time.perf_counter()
    runs = experiment.run_protocol(recipe, seeds)
    summary = experiment.protocol_summary(runs, recipe, seed=config.seed)
    summary["settings"] = {
        "command": "python " + shlex.join(["benchmarks/bandits.py", *argv]),
        "scale": args.scale, "seeds": list(seeds), "recipe": repr(recipe),
        "torch": torch.__version__, "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "workers": os.environ.get("ESSAY_WORKERS", "all cores"),
        "seconds": round(time.perf_counter() - start, 1),
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    text = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    name = f"protocol_{args.scale}.json"
    if args.record:
        path = measurements.write_measurement(ROOT / experiment.FULL_RECORD.parent / name, text)
    else:
        path = ROOT / "_build" / "bandits" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"C25: {summary['C25']}\nC26: {summary['C26']}\n"
          f"{len(summary['runs'])} runs in {summary['settings']['seconds']} s -> {path}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
