"""Pin the generated Verilog: SHA-256 of a handful of units and one whole engine.

    python benchmarks/verilog_digests.py            # print the digests, compare with the pinned
    python benchmarks/verilog_digests.py --write    # pin them (after an intended RTL change)

The digests cover each file after its first line (the line naming the fpgallm version), so a
release does not change them; everything else -- parameters header, module text -- does.
tests/hdl/test_emit.py checks the pinned digests: a refactoring that must not change the
hardware shows up there first, with the points it changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from fpgallm.engine.rtl.simrun import engine_verilog
from fpgallm.estimate import calibration

DATA = Path(__file__).parent / "data" / "verilog_digests.json"
# one check point of each unit (fpgallm.estimate.calibration.CHECK), and the smallest engine
UNIT_POINTS = ("elementwise-add-l4", "activation-gelu-l4", "argmax-l8", "quantize-l8", "norm-rms-l4",
               "softmax-l4", "rope-halves-l2", "gemm-2x4", "gemv-q4g32-p8k8")
ENGINE_POINTS = ("tiny-llama-min",)


def body_digest(text: str) -> str:
    return hashlib.sha256(text.split("\n", 1)[1].encode()).hexdigest()


def digest(point: str) -> str:
    if point in ENGINE_POINTS:
        return body_digest(engine_verilog(calibration.engine_point_params(point)).text)
    return body_digest(calibration.generate(calibration.CHECK[point]).text)


def digests() -> dict[str, str]:
    return {pt: digest(pt) for pt in (*UNIT_POINTS, *ENGINE_POINTS)}


def pinned() -> dict[str, str]:
    return json.loads(DATA.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"pin the digests in {DATA.name}")
    args = ap.parse_args(argv)
    now = digests()
    if args.write:
        DATA.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    old = pinned() if DATA.exists() else {}
    for pt, d in now.items():
        print(f"{pt:28s} {d[:16]}  {'pinned' if old.get(pt) == d else 'CHANGED'}")
    return 0 if all(old.get(pt) == d for pt, d in now.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
