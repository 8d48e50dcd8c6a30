"""What an activation costs: the measuring code (bench/cost.py), the chapter that shows it with the
device forced to the CPU, the guidelines' cost column read from the same measurement, and the
benchmark commands. No assertion here depends on a timing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cost  # noqa: E402

N = 1000


# ----------------------------------------------------------------------------- exact counts
def test_saved_counts_distinct_storages_and_what_is_extra() -> None:
    x = torch.randn(N)
    relu = cost.saved(torch.relu, x)           # torch's relu keeps its output, nothing else
    assert (relu["tensors"], relu["bytes"], relu["extra"]) == (1, 4 * N, 0)
    # exp keeps its result; the product keeps both factors: the input and that same result
    chain = cost.saved(lambda t: torch.exp(t) * t, x)
    assert chain["tensors"] == 3 and chain["bytes"] == 8 * N and chain["extra"] == 4 * N
    assert cost.saved(lambda t: t * 2.0, x)["bytes"] == 0   # a product by a constant keeps nothing


def test_dispatch_counts_ops_and_full_size_temporaries() -> None:
    x = torch.randn(N)
    two = cost.dispatch(lambda t: (t * 2).exp(), x)
    assert (two["ops"], two["temporaries"], two["bytes"]) == (2, 2, 8 * N)
    inplace = cost.dispatch(lambda t: t.mul_(2), x.clone())
    assert (inplace["ops"], inplace["temporaries"], inplace["bytes"]) == (1, 0, 0)
    view = cost.dispatch(lambda t: t.view(10, -1), x)
    assert view["temporaries"] == 0, "a view allocates nothing"
    backward = cost.dispatch(torch.sigmoid, x, backward=True)
    assert backward["ops"] >= 1 and backward["temporaries"] >= 1   # sigmoid_backward makes the gradient


def _timing(name: str, impl: str, median: float, spread: float = 0.05, n: int = 10**6, pass_="forward") -> dict:
    return dict(activation=name, impl=impl, dtype="float32", size=n, **{"pass": pass_}, median=median,
                q1=median * (1 - spread), q3=median * (1 + spread), blocks=9)


def test_a_claim_needs_the_whole_spread_on_one_side() -> None:
    floor = _timing("copy", "floor", 1.0, pass_=None)   # the forward floor: a copy into an existing tensor
    res = {"timings": [floor,
                       _timing("ReLU", "native", 1.2),                 # [1.09, 1.33]: at the floor
                       _timing("GELU", "native", 3.0),                 # [2.6, 3.3]: compute-bound
                       _timing("SiLU", "native", 1.5),                 # [1.36, 1.66]: crosses 1.5
                       _timing("Mish", "native", 2.1, spread=0.2)]}    # [1.6, 2.4]: crosses 2
    assert cost.where_time_goes(res, "ReLU", "float32", 10**6) == "memory"
    assert cost.where_time_goes(res, "GELU", "float32", 10**6) == "compute"
    assert cost.where_time_goes(res, "SiLU", "float32", 10**6) is None
    assert cost.where_time_goes(res, "Mish", "float32", 10**6) is None
    assert cost.where_time_goes(res, "Tanh", "float32", 10**6) is None    # not measured: no claim


def test_ratios_of_one_round_robin_are_taken_round_by_round() -> None:
    """Load that doubles every time of a round cancels in the ratio; the same times measured apart
    (no rounds to pair) give the wide interval of their quartiles."""
    a = dict(_timing("GELU", "native", 2.0), rounds=[1.0, 2.0, 4.0, 8.0])
    b = dict(_timing("clone", "floor", 1.0, pass_=None), rounds=[0.5, 1.0, 2.0, 4.0])
    assert cost.ratio(a, b) == (2.0, 2.0, 2.0)
    apart = cost.ratio({k: v for k, v in a.items() if k != "rounds"}, {k: v for k, v in b.items() if k != "rounds"})
    assert apart[0] < 2.0 < apart[2]


def test_device_is_chosen_at_run_time(monkeypatch) -> None:
    monkeypatch.setenv(cost.DEVICE_ENV, "cpu")
    assert cost.resolve_device() == "cpu"
    monkeypatch.delenv(cost.DEVICE_ENV)
    assert cost.resolve_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="expected cpu, cuda or auto"):
        cost.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            cost.resolve_device("cuda")


def test_the_cache_is_keyed_by_configuration_and_device(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(cost.CACHE_ENV, str(tmp_path))
    paths = {cost.cache_path(c, d) for c in (cost.BOOK, cost.TINY) for d in ("cpu", "cuda")}
    assert len(paths) == 4 and all(p.parent == tmp_path for p in paths)
    assert cost.cache_path(cost.BOOK, "cpu") == cost.cache_path(cost.BOOK, "cpu")


# ----------------------------------------------------------------------------- the chapters
RUN = """
import json, re, sys
import nbclient, nbformat
nb = nbformat.read(sys.argv[1], 4)
nbclient.NotebookClient(nb, resources={"metadata": {"path": "book"}}, timeout=1200).execute()
outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
glued = {o["metadata"]["scrapbook"]["name"]: {k.removeprefix("application/papermill.record/"): v
                                             for k, v in o["data"].items()}
         for o in outputs if "scrapbook" in o.get("metadata", {})}
shown = [o["data"].get("text/markdown", "") for o in outputs
         if o.get("output_type") in ("display_data", "execute_result") and "scrapbook" not in o.get("metadata", {})]
prose = "\\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
used = set(re.findall(r"\\{glue:(?:text|md)\\}`([^`:]+)", prose)) | set(re.findall(r"\\{glue:md\\} (\\S+)", prose))
print(json.dumps({"glued": glued, "used": sorted(used), "shown": shown}))
"""


def run_notebook(path: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", RUN, path], cwd=ROOT, capture_output=True, text=True, timeout=1500,
                       env={**os.environ, **env,
                            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_cost_chapter_runs_with_the_device_forced_to_cpu(tmp_path: Path) -> None:
    """The chapter's code path, device forced to the CPU, in the tests' tiny configuration and a cache
    of its own: it measures, keeps its measurement, and every number its prose pastes is glued."""
    out = run_notebook("book/12_cost.ipynb", {cost.DEVICE_ENV: "cpu", cost.CONFIG_ENV: "tiny",
                                              cost.CACHE_ENV: str(tmp_path)})
    glued = out["glued"]
    assert len(out["used"]) > 60 and set(out["used"]) <= set(glued)
    assert glued["cost_device"]["text/plain"] == "'cpu'"
    assert "`tiny`" in glued["cost_config"]["text/markdown"]
    kept = list(tmp_path.glob("tiny-cpu-*.json"))
    assert len(kept) == 1
    res = json.loads(kept[0].read_text())
    assert res["fingerprint"]["device"] == "cpu"
    impls = {(t["activation"], t["impl"]) for t in res["timings"]}
    assert {("ReLU", "native"), ("ReLU", "scratch"), ("ReLU", "compiled"), ("clone", "floor")} <= impls
    assert res["kernels"]["ReLU"]["float32 forward"] >= 1


def test_guidelines_cost_column_is_the_cost_chapters_measurement(tmp_path: Path) -> None:
    """A planted measurement, in the file the cost chapter's configuration is kept in, is what the
    guidelines show: their cost column is read from it, not timed again."""
    env = {cost.DEVICE_ENV: "cpu", cost.CACHE_ENV: str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        path = cost.cache_path(cost.BOOK, "cpu")
        fingerprint = cost._fingerprint(cost.BOOK, "cpu")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    n = cost.BOOK.largest_on("cpu")
    # ReLU 1 ms; every other activation a distinct multiple no real machine would produce
    planted = {e.name: 1e-3 * (1 if e.name == "ReLU" else 7.25 + i) for i, e in enumerate(cost.elementwise())}
    res = {"fingerprint": fingerprint, "measured_at": "2000-01-01T00:00:00",
           "timings": [_timing(name, impl, s, n=n) for name, s in planted.items() for impl in ("native", "scratch")],
           "compile_seconds": {}, "kernels": {}, "code": {}, "profile": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res))
    before = path.read_bytes()

    out = run_notebook("book/11_guidelines.ipynb", env)
    table = next(s for s in out["shown"] if "| cost |" in s)
    costs = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        costs[cells[0].strip("`").split("(")[0]] = cells[-1]
    relu = _timing("ReLU", "native", planted["ReLU"], n=n)
    assert costs == {name: cost.shown(cost.ratio(_timing(name, "native", s, n=n), relu)) + "×"
                     for name, s in planted.items()}
    assert out["glued"]["guidelines_relu_us"]["text/plain"] == "1000.0"
    assert path.read_bytes() == before, "the guidelines measured instead of reading"
    assert len(list(tmp_path.glob("*.json"))) == 1


# ----------------------------------------------------------------------------- the commands
def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})


def test_bench_help_and_dry_run() -> None:
    r = _run("-m", "bench", "--help")
    assert r.returncode == 0 and "--dry-run" in r.stdout and "grade-all" in r.stdout
    r = _run("-m", "bench", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("machine: ") and f"{os.cpu_count()} cores" in r.stdout
    assert 'python -c "import torch"' in r.stdout
    for task, goal in (("grade-all", "20x"), ("grade-one", "5x"), ("book", "10x")):
        assert re.search(rf"{task} .*goal <= {goal}", r.stdout), r.stdout


def test_bench_bad_arguments_are_one_line_errors() -> None:
    r = _run("-m", "bench", "--only", "nope")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "unknown task" in r.stderr
    r = _run("bench/activation_cost.py", "--threads", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    if not torch.cuda.is_available():
        r = _run("bench/activation_cost.py", "--device", "cuda")
        assert r.returncode == 2 and r.stderr.strip() == "error: device cuda: CUDA is not available on this machine"
