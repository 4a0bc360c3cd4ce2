"""The install and build set-up: pins, the conda mirror of the lock, the two README commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


def pins(lines) -> dict[str, str]:
    found = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = PIN.match(line)
        assert m, f"unpinned requirement: {line!r}"
        found[m.group(1).lower().replace("_", "-")] = m.group(2)
    return found


def lock() -> dict[str, str]:
    return pins((ROOT / "requirements.lock").read_text().splitlines())


def test_lock_pins_torch_and_keeps_cuda_and_torchvision_out():
    locked = lock()
    assert locked["torch"].startswith("2.13.0")
    assert "torchvision" not in locked
    assert not [name for name in locked if name.startswith("nvidia-")]
    assert locked["laplace-torch"] == "0.3"
    assert locked["jupyter-book"].startswith("1."), "the book is Jupyter Book 1"


def test_environment_yml_has_the_same_pins_as_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == lock()
    assert "python=3.11" in env["dependencies"]


def test_package_metadata_agrees_with_the_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
    locked = lock()
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].lower()
        assert name in locked, f"{name} is a dependency but not in the lock"
    assert "torch==2.13.0" in project["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_book_build_fails_on_errors_and_warnings():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["raise_on_error"] is True
    assert config["execute"]["allow_errors"] is False
    assert config["execute"]["stderr_output"] == "error"
    makefile = (ROOT / "Makefile").read_text()
    book = re.search(r"^book:.*\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert "jupyter-book build --all -W" in book
    assert "--no-deps" in makefile


def test_toc_lists_every_chapter():
    toc = (ROOT / "_toc.yml").read_text()
    for chapter in sorted((ROOT / "chapters").glob("*.md")):
        assert f"chapters/{chapter.stem}" in toc, f"{chapter.name} is missing from _toc.yml"
