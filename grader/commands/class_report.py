"""``python -m grader class-report REPORT.json --html class.html [--csv items.csv] [--names]``.

Item analysis of a class from the JSON report of ``python -m grader batch`` alone (nothing is
regraded): per activation and per check, how many students attempted it, how many passed, and the
failure messages grouped by pattern, each group with the hint the students saw. Checks that almost
everyone fails (an unclear chapter or exercise, or a wrong check) and checks that everyone passes
(no information) are flagged; a chart per chapter and a histogram of totals show the class at a
glance. The page names no student unless ``--names`` is given: it may go to teaching assistants,
and the gradebook CSV stays the place for names.

The analysis is grader/feedback/class_analysis.py, the page grader/feedback/class_page.py.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import sys
from collections import Counter
from pathlib import Path

from grader.feedback import pages
from grader.feedback.class_analysis import BadReport, analyse, load
from grader.feedback.class_page import csv_text, page


# --- command line ---------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader class-report",
                                description="Which checks a class fails, and why: item analysis of a batch report.")
    p.add_argument("report", metavar="REPORT.json", help="the JSON report of python -m grader batch ... --json")
    p.add_argument("--html", metavar="PAGE", help="write the class report here (one self-contained page)")
    p.add_argument("--csv", metavar="ITEMS", help="write one row per activation and check here")
    p.add_argument("--names", action="store_true",
                   help="name the students in each failure group (by default the page names no one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.html and not args.csv:
        print("error: nothing to write: give --html PAGE, --csv ITEMS or both", file=sys.stderr)
        return 2
    try:
        report = load(args.report)
    except BadReport as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    analysis = analyse(report)
    if args.html and not pages.write(page(analysis, args.names, Path(args.report).name), args.html, "--html"):
        return 2
    if args.csv and not pages.write(csv_text(analysis), args.csv, "--csv"):
        return 2
    flags = Counter(i.flag for i in analysis.items.values())
    written = " and ".join(f for f in (args.html, args.csv) if f)
    print(f"wrote {written}: {analysis.students} students, {sum(analysis.with_error)} with an error; "
          f"{flags['hard']} checks almost everyone fails, {flags['no information']} that everyone passes",
          file=sys.stderr)
    return 0
