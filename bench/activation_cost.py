"""What an activation costs, in full: ``python bench/activation_cost.py [--config full] [--device auto]``.

Times every elementwise activation of the catalogue (torch's op, the from-scratch solution, and
torch.compile of it; forward and forward+backward; float32 and bfloat16; 10^3 to 10^7 elements, and
10^8 on a GPU) with the code the book's chapter "What an activation costs" runs in its short
configuration (``bench/cost.py``), and prints, for the largest size, each time against the memory
floor measured in the same run and as a ratio to torch's op. ``--config book`` runs the chapter's
configuration (and leaves its result where the book reads it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cost  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as the grader's command line does
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _interval(r: tuple[float, float, float] | None) -> str:
    return "-" if r is None else f"{r[1]:5.2f} [{r[0]:.2f}, {r[2]:.2f}]"


def report(res: dict) -> str:
    fp = res["fingerprint"]
    m, config = fp["machine"], fp["config"]
    n = cost.largest(res)
    lines = [f"machine: {m['cpu']}, {m['cores']} cores" + (f", {m['gpu']}" if m["gpu"] else ""),
             f"torch {m['torch']}, device {fp['device']}, {config['threads']} thread(s), measured {res['measured_at']}",
             f"configuration {config['name']}: sizes {', '.join(f'{s:.0e}' for s in cost.sizes(res))}",
             "ratios: median [lower, upper quartile] of the ratios taken round by round", ""]
    for dtype in config["dtypes"]:
        lines.append(f"bandwidth ({dtype}, copy into an existing tensor): " + ", ".join(
            f"{s:.0e}: {cost.bandwidth(res, dtype, s) / 1e9:.1f} GB/s" for s in cost.sizes(res)))
    for dtype in config["dtypes"]:
        lines += ["", f"{dtype}, {n:.0e} elements: time per element, x the floor (torch's op), "
                      "and from scratch / compiled as a ratio to torch's op",
                  f"{'activation':12} {'pass':17} {'native ns/el':>12} {'x floor':>22} "
                  f"{'scratch / native':>22} {'compiled / native':>22}  where the time goes"]
        for entry in cost.elementwise():
            for pass_ in cost.PASSES:
                native = cost.timing(res, entry.name, "native", dtype, n, pass_)
                if native is None:
                    continue
                where = cost.where_time_goes(res, entry.name, dtype, n) if pass_ == "forward" else None
                lines.append(
                    f"{entry.name:12} {pass_:17} {native['median'] / n * 1e9:12.3f} "
                    f"{_interval(cost.ratio(native, cost.floor(res, dtype, n, pass_))):>22} "
                    f"{_interval(cost.ratio(cost.timing(res, entry.name, 'scratch', dtype, n, pass_), native)):>22} "
                    f"{_interval(cost.ratio(cost.timing(res, entry.name, 'compiled', dtype, n, pass_), native)):>22}"
                    f"  {where or ''}")
    if res["compile_seconds"]:
        slowest = max(res["compile_seconds"], key=res["compile_seconds"].get)
        lines += ["", f"torch.compile: {len(res['compile_seconds'])} compilations, "
                      f"{sum(res['compile_seconds'].values()):.1f} s in all, the slowest {slowest} "
                      f"({res['compile_seconds'][slowest]:.1f} s)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python bench/activation_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(cost.CONFIGS), default="full")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    p.add_argument("--threads", type=int, help="torch threads (default: the configuration's)")
    p.add_argument("--cached", action="store_true", help="reuse this machine's earlier measurement if there is one")
    p.add_argument("--json", type=Path, help="also write the measurement to this file")
    args = p.parse_args(argv)
    try:
        device = cost.resolve_device(args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = cost.CONFIGS[args.config]
    if args.threads is not None:
        if args.threads < 1:
            p.error("--threads must be at least 1")
        config = cost.dataclasses.replace(config, threads=args.threads)
    start = time.perf_counter()
    res = cost.results(config, device, fresh=not args.cached,
                       progress=lambda s: print(f"  {time.perf_counter() - start:6.0f} s  {s}", file=sys.stderr))
    print(report(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
