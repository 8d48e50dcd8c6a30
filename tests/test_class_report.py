"""`python -m grader class-report`: item analysis of a class from the batch report alone.

Each distinct kind of submission (correct, naive sigmoid, ReLU as a loop, untouched stubs, a corrupt
notebook, LeakyReLU as a maximum) is graded for real once, by `python -m grader batch` on a class of
one student per kind; a class of 60 is then built from copies of those records under other names,
and every count the page and the CSV show is checked against that construction.
"""
from __future__ import annotations

import copy
import csv
import html.parser
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import nbformat
import pytest

from grader.commands import class_report
from grader.feedback import class_analysis
from grader.feedback.class_analysis import pattern
from grader.feedback.hints import hint_for

from conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parent.parent

NAIVE_SIGMOID = "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))\n"
LOOP_RELU = ("def relu(input, inplace=False):\n"
             "    flat = input.reshape(-1)\n"
             "    out = torch.stack([v if v > 0 else v * 0 for v in flat]) if flat.numel() else flat.clone()\n"
             "    return input.copy_(out.reshape(input.shape)) if inplace else out.reshape(input.shape)\n")
MAX_LEAKY = ("def leaky_relu(input, negative_slope=0.01, inplace=False):\n"  # wrong for a slope above 1
             "    x = _compute(input)\n"
             "    return _finish(input, torch.maximum(x, x * negative_slope), inplace)\n")

# kind -> students of it in the class of 60: 30% naive sigmoid, 10% loop ReLU, 5% corrupt notebooks,
# 5% untouched exercises, 10% who did only LeakyReLU (wrongly), the rest correct
CLASS = {"correct": 24, "naive-sigmoid": 18, "loop-relu": 6, "corrupt": 3, "stub": 3, "leaky-max": 6}
CHAPTER_1 = ("ReLU", "Sigmoid", "Tanh")
HAS = {"correct": CHAPTER_1, "naive-sigmoid": CHAPTER_1, "loop-relu": CHAPTER_1, "stub": CHAPTER_1,
       "corrupt": (), "leaky-max": ("LeakyReLU",)}


def folder(kind: str) -> str:
    return f"kindq-{kind}"  # a token that no message contains


def _with_cell(nb: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells.append(nbformat.v4.new_code_cell(code))
    return nb


def write_kinds(root: Path) -> None:
    solution = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    notebooks = {"correct": solution, "naive-sigmoid": _with_cell(solution, NAIVE_SIGMOID),
                 "loop-relu": _with_cell(solution, LOOP_RELU),
                 "stub": nbformat.read(ROOT / "exercises" / "01_standard.ipynb", 4)}
    for kind, nb in notebooks.items():
        (root / folder(kind)).mkdir(parents=True)
        nbformat.write(nb, root / folder(kind) / "01_standard.ipynb")
    (root / folder("corrupt")).mkdir()
    (root / folder("corrupt") / "01_standard.ipynb").write_text('{"cells": [')
    # LeakyReLU alone, as a .py: the chapter's helpers and its LeakyReLU cell, leaky_relu replaced
    cells = [c.source for c in nbformat.read(ROOT / "solutions" / "02_relu_variants.ipynb", 4).cells
             if c.cell_type == "code"]
    helpers = next(c for c in cells if "def _compute" in c)
    leaky = next(c for c in cells if "def leaky_relu" in c)
    (root / folder("leaky-max")).mkdir()
    (root / folder("leaky-max") / "leaky.py").write_text(f"{helpers}\n\n{leaky}\n\n{MAX_LEAKY}")


def grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=900)


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> tuple[Path, dict]:
    """The real batch report of one student per kind."""
    root = tmp_path_factory.mktemp("kinds")
    write_kinds(root / "submissions")
    report = root / "report.json"
    r = grader("batch", str(root / "submissions"), "--csv", str(root / "gradebook.csv"), "--json", str(report),
               "--jobs", "2", "--device", "cpu")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr  # 1: the corrupt notebook
    return report, json.loads(report.read_text())


def record_of(data: dict, kind: str) -> dict:
    return next(s for s in data["students"] if s["student"] == folder(kind))


@pytest.fixture(scope="module")
def big_class(kinds, tmp_path_factory) -> tuple[Path, dict, dict[str, str]]:
    """60 students: the kinds' real records under other names, in a shuffled order."""
    _, data = kinds
    order = [kind for kind, n in CLASS.items() for _ in range(n)]
    random.Random(15).shuffle(order)
    kind_of = {f"studq{i:03d}x": kind for i, kind in enumerate(order)}
    students = [json.loads(json.dumps(record_of(data, kind)).replace(folder(kind), name))
                for name, kind in kind_of.items()]
    big = {**data, "students": students}
    path = tmp_path_factory.mktemp("class") / "class.json"
    path.write_text(json.dumps(big))
    return path, big, kind_of


def expected_items(data: dict) -> dict[tuple[str, str], dict[str, int]]:
    """Counts straight from the records (independent of class_report)."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: Counter(attempted=0, passed=0, not_started=0))
    for s in data["students"]:
        for e in s["exercises"]:
            for c in e["checks"]:
                row = out[(e["name"], c["name"])]
                if c["passed"] is None:
                    continue
                row["attempted"] += 1
                row["passed"] += c["passed"] is True
                row["not_started"] += "raises NotImplementedError" in c["message"]
    return out


def read_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == class_analysis.CSV_COLUMNS
    return {(r["exercise"], r["check"]): r for r in rows}


class PageCounts(html.parser.HTMLParser):
    """The numbers in the page's tables: per ``data-item`` row, each cell by its class."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, dict[str, str]] = {}
        self.flags: dict[str, set[str]] = defaultdict(set)
        self.spans: dict[str, str] = {}
        self.images = 0
        self._row: str | None = None
        self._cell: str | None = None
        self._span: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "data-flag" in a:
            self.flags[a["data-flag"]].add(a["data-item"])
        elif tag == "tr" and "data-item" in a:
            self._row = a["data-item"]
            self.items[self._row] = {}
        elif tag == "td" and self._row:
            self._cell = (a.get("class") or "").split()[-1] if a.get("class") else None
        elif tag == "span" and "id" in a:
            self._span = a["id"]
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "span":
            self._span = None

    def handle_data(self, data: str) -> None:
        if self._row and self._cell:
            self.items[self._row][self._cell] = self.items[self._row].get(self._cell, "") + data
        if self._span:
            self.spans[self._span] = data


def parse(page: Path) -> PageCounts:
    p = PageCounts()
    p.feed(page.read_text(encoding="utf-8"))
    return p


# --- patterns -------------------------------------------------------------------------------

def test_one_kind_of_failure_at_one_input_is_one_pattern() -> None:
    same = [("sigmoid() float32: value is 0.5 at x=1.0, torch gives 0.7310586",
             "sigmoid() float32: value is 0.9 at x=1.0, torch gives 0.7310586"),  # a wrong number, either way
            ("relu(): dispatches 110 torch ops on 10 elements but 8,996 on 1,000: a Python loop over elements?",
             "relu(): dispatches 30 torch ops on 10 elements but 3,000 on 1,000: a Python loop over elements?"),
            ("sigmoid() float16: value is 0.9047852 at x=2.246094, the exact value is 0.9043131 and torch gives "
             "0.9042969 (error 0.0004720993 > allowed 0.000254672); compute in float32 and round once",
             "sigmoid() float16: value is 0.9051 at x=2.246094, the exact value is 0.9043131 and torch gives "
             "0.9042969 (error 0.0007869 > allowed 0.000254672); compute in float32 and round once"),
            ("relu(): raised RuntimeError: object at 0x7f3a2b1c is wrong", "relu(): raised RuntimeError: object "
             "at 0x55d0e1 is wrong")]
    for a, b in same:
        assert pattern(a) == pattern(b), (a, b)
    assert pattern(same[0][0]) == "sigmoid() float32: value is <number> at x=1.0, torch gives 0.7310586"
    assert pattern("sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0") == \
        "sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0"


def test_different_kinds_of_failure_are_not_merged() -> None:
    base = "sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0"
    different = [
        "sigmoid() float32: grad is inf at x=-100.0, torch gives 0.0",  # inf is not nan
        "sigmoid() float32: grad is -inf at x=-100.0, torch gives 0.0",
        "sigmoid() float32: grad is 0.5 at x=-100.0, torch gives 0.0",  # a finite wrong value
        "sigmoid() float32: value is nan at x=-100.0, torch gives 0.0",  # the value, not the gradient
        "sigmoid() float32: grad is nan at x=100.0, torch gives 0.0",  # another input
        "sigmoid() float32: grad is nan at x=-inf, torch gives 0.0",
        "sigmoid() float64: grad is nan at x=-100.0, torch gives 0.0",  # another dtype (the case)
        "softplus(beta=2.0, threshold=20.0) float32: grad is nan at x=-100.0, torch gives 0.0",
        "sigmoid() float32: shape is (8,), torch gives (8, 16)",
    ]
    assert len({pattern(m) for m in [base, *different]}) == 1 + len(different)
    # a wrong 0 is not a wrong nonzero number either; names with digits are not numbers
    assert pattern("relu() float32: value is 0.0 at x=nan, torch gives nan") != \
        pattern("relu() float32: value is 1.0 at x=nan, torch gives nan")
    kept = "relu6() bfloat16 on a non-contiguous 3-D input (2, 3, 4): calls torch's own aten.relu6: write it"
    assert pattern(kept) == kept


def test_the_hint_splits_a_pattern(tmp_path: Path) -> None:
    """A value close to torch's (rounded SELU constants: a hint says so) and a far one are one
    pattern but two groups, each with the hint those students saw."""
    close = "selu() float32: value is 1.0508 at x=1.0, torch gives 1.050701"
    far = "selu() float32: value is 5.0 at x=1.0, torch gives 1.050701"
    assert pattern(close) == pattern(far)
    assert hint_for("SELU", "values[float32]", close) != hint_for("SELU", "values[float32]", far)
    def check(message: str) -> dict:
        return {"name": "values[float32]", "passed": False, "status": "failed", "message": message, "notes": []}

    students = [{"student": f"s{i}", "files": [], "score": 0, "max_score": 1, "error": None, "notes": [],
                 "exercises": [{"name": "SELU", "score": 0, "max_score": 1, "checks": [check(m)]}]}
                for i, m in enumerate([close, close, far])]
    analysis = class_analysis.analyse({"max_scores": {"SELU": 1}, "students": students})
    groups = analysis.items[("SELU", "values[float32]")].ranked()
    assert [(g.count, g.hint) for g in groups] == [(2, hint_for("SELU", "values[float32]", close)),
                                                   (1, hint_for("SELU", "values[float32]", far))]


# --- the generated class --------------------------------------------------------------------

def test_class_of_60_counts_match_the_construction(big_class, tmp_path: Path, capsys) -> None:
    path, data, kind_of = big_class
    page, items = tmp_path / "class.html", tmp_path / "items.csv"
    assert class_report.main([str(path), "--html", str(page), "--csv", str(items)]) == 0
    assert "60 students, 3 with an error" in capsys.readouterr().err

    expected = expected_items(data)
    rows = read_csv(items)
    shown = parse(page)
    assert set(rows) == set(expected)
    assert set(shown.items) == {f"{a}|{c}" for a, c in expected}
    for (activation, check), want in expected.items():
        row, cells = rows[(activation, check)], shown.items[f"{activation}|{check}"]
        assert (int(row["attempted"]), int(row["passed"]), int(row["not_started"])) == \
            (want["attempted"], want["passed"], want["not_started"]), (activation, check)
        assert (int(cells["attempted"]), int(cells["passed"]), int(cells["not-started"])) == \
            (want["attempted"], want["passed"], want["not_started"]), (activation, check)
        assert float(row["pass_rate"]) == pytest.approx(want["passed"] / want["attempted"], abs=5e-4)

    # what the construction says, with no look at any record: who attempted what, who fails what
    for (activation, _), row in rows.items():  # everyone but the corrupt notebooks and the LeakyReLU-only
        assert row["attempted"] == str(sum(n for kind, n in CLASS.items() if activation in HAS[kind]))
        assert row["attempted"] == {"ReLU": "51", "Sigmoid": "51", "Tanh": "51", "LeakyReLU": "6"}[activation]
    edges = rows[("Sigmoid", "edges")]
    assert (edges["attempted"], edges["passed"], edges["not_started"]) == ("51", str(51 - 18 - 3), "3")
    assert edges["top_failure"] == "sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0"
    assert edges["top_failure_students"] == "18"
    assert edges["top_failure_hint"] == hint_for("Sigmoid", "edges", edges["top_failure"])
    assert "exp(-|x|)" in edges["top_failure_hint"]
    loop = rows[("ReLU", "vectorised")]
    assert (loop["attempted"], loop["passed"], loop["top_failure_students"]) == ("51", str(51 - 6 - 3), "6")
    assert loop["top_failure"] == ("relu(): dispatches <n> torch ops on <n> elements but <n> on <n>: a Python loop "
                                   "over elements? Use tensor ops")
    assert rows[("Tanh", "api")]["passed"] == str(51 - 3)  # only the stubs fail
    assert shown.spans == {"students": "60", "errors": "3"}
    assert shown.images == 1 + 2  # the histogram, one chart per chapter (standard, ReLU variants)

    # flags: at least 90% of at least 5 starters fail; everyone who started passes
    def flag(want: Counter) -> str:
        started = want["attempted"] - want["not_started"]
        if started < 5:
            return ""
        return ("no information" if want["passed"] == started
                else "hard" if (started - want["passed"]) / started >= 0.9 else "")
    for flag_name in ("hard", "no information"):
        flagged = {f"{a}|{c}" for (a, c), want in expected.items() if flag(want) == flag_name}
        assert shown.flags[flag_name] == flagged
        assert {f"{a}|{c}" for (a, c), r in rows.items() if r["flag"] == flag_name} == flagged
    assert "LeakyReLU|values[float64]" in shown.flags["hard"]  # all 6 fail with negative_slope=2
    assert "Tanh|api" in shown.flags["no information"] and "Sigmoid|edges" not in shown.flags["hard"]

    text = page.read_text(encoding="utf-8")
    assert not any(name in text for name in kind_of), "a student is named without --names"
    assert "kindq" not in text
    assert "3 students</span>: <code class=\"pattern\">&lt;student&gt;/01_standard.ipynb: not a notebook " \
           "(invalid JSON at line &lt;n&gt;)</code>" in text


def test_names_only_with_names(big_class, tmp_path: Path) -> None:
    path, _, kind_of = big_class
    page = tmp_path / "named.html"
    assert class_report.main([str(path), "--html", str(page), "--names"]) == 0
    text = page.read_text(encoding="utf-8")
    naive = sorted(n for n, k in kind_of.items() if k == "naive-sigmoid")
    assert f"students: {', '.join(naive)}</div>" in text  # the group of the naive sigmoid's edges failure
    corrupt = sorted(n for n, k in kind_of.items() if k == "corrupt")
    assert f"students: {', '.join(corrupt)}</div>" in text


def test_end_to_end_batch_then_class_report(kinds, tmp_path: Path) -> None:
    """A real class graded by `batch`, then reported through the command line."""
    report, data = kinds
    page, items = tmp_path / "out" / "class.html", tmp_path / "out" / "items.csv"
    r = grader("class-report", str(report), "--html", str(page), "--csv", str(items))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (f"wrote {page} and {items}: 6 students, 1 with an error; 0 checks almost everyone "
                                "fails, 0 that everyone passes")  # 4 started chapter 1: too few to flag
    rows = read_csv(items)
    for key, want in expected_items(data).items():
        assert (int(rows[key]["attempted"]), int(rows[key]["passed"])) == (want["attempted"], want["passed"])
    assert (rows[("Sigmoid", "edges")]["attempted"], rows[("Sigmoid", "edges")]["passed"]) == ("4", "2")
    assert rows[("LeakyReLU", "api")]["attempted"] == "1"
    assert parse(page).spans == {"students": "6", "errors": "1"}


def test_bad_input_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"grader_version": "0", "submissions": []}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"students": [')
    cases = {str(tmp_path / "missing.json"): "no such file",
             str(broken): "not JSON",
             str(single): "a report of single submissions",
             str(tmp_path): "a folder"}
    for content, why in [([], "not an object"), ({"students": []}, '"max_scores"'),
                         ({"max_scores": {}, "students": [{"student": "a", "score": 0, "exercises": [
                             {"name": "ReLU", "checks": [{"name": "api", "passed": 1}]}]}]},
                          "students[0].exercises[0].checks[0]")]:
        p = tmp_path / f"bad{len(cases)}.json"
        p.write_text(json.dumps(content))
        cases[str(p)] = why
    for path, why in cases.items():
        assert class_report.main([path, "--html", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and why in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.html").exists()
    from grader.cli import main  # through the command line's door, in this process (`python -m grader` is main)

    assert main(["class-report", str(broken), "--html", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken}: not JSON (") and len(err.splitlines()) == 1, err
    assert class_report.main([str(single)]) == 2  # nothing to write
    assert "give --html" in capsys.readouterr().err


def test_page_in_browser(big_class, tmp_path: Path, browser) -> None:  # noqa: F811
    """Self-contained: it loads from a file with every other request refused, images render, no
    console error."""
    path, _, _ = big_class
    page = tmp_path / "class.html"
    assert class_report.main([str(path), "--html", str(page)]) == 0
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    requested: list[str] = []

    def refuse(route) -> None:
        requested.append(route.request.url)
        route.abort()

    ctx.route(lambda url: not url.startswith(("file:", "data:")), refuse)
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page.as_uri())
    tab.wait_for_load_state("load")
    images = tab.locator("img")
    assert images.count() == 3
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"image {i} did not render"
    assert not errors and not requested, (errors, requested)
    tab.eval_on_selector_all("details", "ds => ds.forEach(d => { d.open = true; })")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "class_report.png"), full_page=True)
    ctx.close()
