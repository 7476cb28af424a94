"""``fpgallm generate`` at default knobs on every board: wall time, peak memory, outcome.

Each row runs ``fpgallm generate MODEL --board B`` in a child process (the CLI a user runs)
into a temporary folder and reports the child's wall time and peak resident memory
(``os.wait4``), the exit status, stderr's line count and the size of the engine's Verilog.
The bound it checks is the one ``fpgallm generate`` keeps on a 2-core machine: at most
3 minutes and 4 GB on every board, and exit 0, or exit 2 with one line.

    python benchmarks/generate_boards.py [--model tiny-llama] [--board u280 ...] [--json] [--write]

``--write`` records the rows (with each board's engine parameters) in
``benchmarks/data/generate_boards.json``; tests/project/test_every_board.py checks that the
planner still builds exactly the engines measured there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fpgallm.boards import all_boards

DATA = Path(__file__).resolve().parent / "data" / "generate_boards.json"
MAX_SECONDS = 180.0
MAX_BYTES = 4 * 2**30


def run_one(model: str, board: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="fpgallm-genbench-") as tmp:
        out, so, se = Path(tmp) / "p", Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(so, "w") as fo, open(se, "w") as fe:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "fpgallm", "generate", model, "--board", board,
                                     "--out", str(out)], stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = so.read_text(), se.read_text()
        verilog = sorted((out / "rtl").glob("*.v")) if out.exists() else []
        manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
        row = {"board": board, "model": model, "exit": proc.returncode, "seconds": round(wall, 1),
               "peak_bytes": usage.ru_maxrss * 1024, "verilog_bytes": sum(p.stat().st_size for p in verilog),
               "design": manifest.get("design", {}).get("name"),
               "params": manifest.get("design", {}).get("params"), "stderr_lines": len(stderr.splitlines()),
               "message": (stderr.strip().splitlines() or stdout.strip().splitlines() or [""])[-1]}
        row["ok"] = (row["seconds"] <= MAX_SECONDS and row["peak_bytes"] <= MAX_BYTES
                     and (row["exit"] == 0 or (row["exit"] == 2 and row["stderr_lines"] == 1)))
        return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-llama")
    ap.add_argument("--board", action="append", help="board name (repeatable; default: every board)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true", help=f"record the rows in {DATA.name}")
    args = ap.parse_args(argv)
    rows = []
    for board in args.board or sorted(all_boards()):
        row = run_one(args.model, board)
        rows.append(row)
        if not args.json:
            print(f"{board:>10} {row['design'] or '-':>11} exit {row['exit']}  {row['seconds']:6.1f} s "
                  f"({row['seconds'] / MAX_SECONDS:4.0%} of {MAX_SECONDS:.0f} s)  "
                  f"{row['peak_bytes'] / 2**30:5.2f} GB ({row['peak_bytes'] / MAX_BYTES:4.0%} of 4 GB)  "
                  f"Verilog {row['verilog_bytes'] / 2**20:6.2f} MiB  {'ok' if row['ok'] else 'OVER'}",
                  flush=True)
            if row["exit"] != 0:
                print(f"{'':>12}{row['message']}")
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.write:
        old = json.loads(DATA.read_text()) if DATA.exists() else {}
        old.setdefault(args.model, {}).update({r["board"]: r for r in rows})
        DATA.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
