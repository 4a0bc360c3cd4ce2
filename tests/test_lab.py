"""A reader can open every chapter as a notebook in JupyterLab (``make lab``).

A module fixture starts the environment's ``jupyter lab`` from the book's root, on 127.0.0.1, on
a free port, with a token and no browser, and with a scratch Jupyter config, runtime, settings
and workspaces directory so that nothing of the user's own Jupyter set-up takes part: only what
the pinned environment installs. Jupytext's server extension is switched on by the jupytext
wheel itself, in ``<env>/etc/jupyter/jupyter_server_config.d/jupytext.json``. Through the
server's REST API the tests then check that every ``chapters/*.md`` opens as a notebook with the
chapter's own cells, that the chapter's kernel is on offer, and that JupyterLab loads jupytext's
lab extension. The server is always stopped at the end. Starting it takes a few seconds, so the
module is marked ``slow``: ``make test`` runs it and ``make test-fast`` skips it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jupytext
import pytest

pytestmark = pytest.mark.slow  # starts a Jupyter server: a few seconds

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
#: The environment's own jupyter: .venv/bin/jupyter when the tests run from .venv.
JUPYTER = Path(sys.executable).with_name("jupyter")
#: Seconds the server may take to answer after it starts.
STARTUP_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` and the way to ask it (GET only, with its token)."""

    def __init__(self, process: subprocess.Popen, url: str, token: str, log: Path):
        self.process, self.url, self.token, self.log = process, url, token, log

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str):
        status, body = self.get(path)
        assert status == 200, f"GET {path} answered {status}: {body[:500]!r}\n{self.log_tail()}"
        return json.loads(body)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "server log (tail):\n" + text[-chars:]


def wait_until_answering(lab: Lab, seconds: float) -> float:
    """Poll ``/api/status`` until the server answers 200; the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if lab.process.poll() is not None:
            raise AssertionError(f"jupyter lab exited with status {lab.process.returncode} "
                                 f"before answering\n{lab.log_tail()}")
        try:
            if lab.get("/api/status", timeout=5.0)[0] == 200:
                return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"jupyter lab did not answer within {seconds:.0f} s\n{lab.log_tail()}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    assert JUPYTER.is_file(), f"no {JUPYTER}: run `make install` (JupyterLab is in the lock)"
    scratch = tmp_path_factory.mktemp("lab")
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(scratch / name.lower())
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    port, token = free_port(), secrets.token_hex(16)
    log = scratch / "server.log"
    command = [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--port-retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={ROOT}"]
    if os.geteuid() == 0:  # as in containers and CI; the server refuses root without it
        command.append("--allow-root")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    server = Lab(process, f"http://127.0.0.1:{port}", token, log)
    try:
        seconds = wait_until_answering(server, STARTUP_SECONDS)
        print(f"jupyter lab answered after {seconds:.1f} s")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def title_of(notebook) -> str:
    """The chapter's title: the first level-1 heading of its markdown cells."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise AssertionError("no level-1 heading in a markdown cell")


def test_there_are_chapters_to_open():
    assert CHAPTERS, "no chapters found under chapters/"


def test_the_jupytext_server_extension_is_switched_on_by_the_environment():
    config = Path(sys.prefix, "etc", "jupyter", "jupyter_server_config.d", "jupytext.json")
    assert config.is_file(), f"{config} is missing: is jupytext installed in this environment?"
    extensions = json.loads(config.read_text())["ServerApp"]["jpserver_extensions"]
    assert extensions.get("jupyterlab_jupytext") is True


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_opens_as_a_notebook(lab, chapter):
    path = chapter.relative_to(ROOT).as_posix()
    model = lab.get_json(f"/api/contents/{path}?type=notebook&content=1")
    assert model["type"] == "notebook" and model["format"] == "json", (model["type"], path)
    served = model["content"]
    assert served["nbformat"] == 4
    assert served["metadata"]["jupytext"]["text_representation"]["format_name"] == "myst"
    cells = [(c["cell_type"], c["source"]) for c in served["cells"]]
    assert any(kind == "code" and source.strip() for kind, source in cells), \
        f"{path} opens without a code cell"
    own = jupytext.read(chapter)
    title = title_of(own)
    assert any(kind == "markdown" and f"# {title}" in source.splitlines() for kind, source in cells), \
        f"{path} opens without its title {title!r}"
    assert cells == [(c.cell_type, c.source) for c in own.cells], \
        f"the notebook served for {path} is not the chapter's own cells"


def test_the_chapters_kernel_is_on_offer(lab):
    specs = lab.get_json("/api/kernelspecs")["kernelspecs"]
    wanted = {jupytext.read(chapter).metadata["kernelspec"]["name"] for chapter in CHAPTERS}
    assert wanted <= set(specs), f"kernels {sorted(wanted - set(specs))} are not on offer"


def test_jupyterlab_loads_the_jupytext_lab_extension(lab):
    status, body = lab.get("/lab")
    assert status == 200, body[:300]
    found = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      body, flags=re.S)
    assert found, "the JupyterLab page carries no page config"
    page = json.loads(found.group(1))
    names = {ext["name"] for ext in page.get("federated_extensions", [])}
    assert "jupyterlab-jupytext" in names, sorted(names)
