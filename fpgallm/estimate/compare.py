"""Published LLM decode results (``data/llm_decode_published.csv``) beside an estimate.

The data file is the survey dataset described in ``data/README.md`` (Li et al.,
arXiv:2410.04466, repository Kimho666/LLM_Hardware_Survey): decode tokens/s at batch 1 of
models of about 7B parameters, with the reported power.  It is used for comparison only;
no estimator coefficient is derived from it.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "llm_decode_published.csv"
SOURCE = ("Li et al., 'Large Language Model Inference Acceleration: A Comprehensive Hardware "
          "Perspective', arXiv:2410.04466; dataset Kimho666/LLM_Hardware_Survey data/data202505.xlsx")
# the survey's rows are models of about 7B parameters
PUBLISHED_PARAMS = 7e9
SIZE_BAND = (3e9, 15e9)


@dataclass(frozen=True)
class Published:
    platform: str
    work: str
    year: str
    tokens_per_s: float
    power_w: float
    url: str

    @property
    def tokens_per_j(self) -> float:
        return self.tokens_per_s / self.power_w if self.power_w > 0 else float("nan")

    @property
    def device(self) -> str:
        return self.work.split(",", 1)[1].strip() if "," in self.work else self.work

    def as_dict(self) -> dict:
        return {"platform": self.platform, "work": self.work, "year": self.year,
                "tokens_per_s": self.tokens_per_s, "power_w": self.power_w,
                "tokens_per_j": self.tokens_per_j, "url": self.url}


@functools.lru_cache(maxsize=1)
def published() -> tuple[Published, ...]:
    """Every row with a numeric tokens/s and power (exact duplicates dropped)."""
    rows, seen = [], set()
    with open(DATA, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            try:
                tps, w = float(r["tokens_per_s"]), float(r["power_w"])
            except ValueError:
                continue
            key = (r["work"], tps, w)
            if key in seen:
                continue
            seen.add(key)
            rows.append(Published(r["platform"], r["work"], r["year"], tps, w, r["url"]))
    return tuple(rows)


def same_board(board: str) -> list[Published]:
    """Rows whose device is ``board`` (``u280`` matches ``FlightLLM, U280``; the whole name
    or, for ``arty-a7-100t``-style names, the first part)."""
    b = board.lower()
    keys = {re.sub(r"[^a-z0-9]", "", b), b.split("-")[0]}
    out = []
    for p in published():
        dev = p.device.lower()
        if any(k and re.search(rf"(?<![a-z0-9]){re.escape(k)}(?![a-z0-9])", dev) for k in keys):
            out.append(p)
    return out


def comparable(board: str, n_params: int) -> dict:
    """Published points for the same board, and (for a model of about 7B parameters) the
    same model size: every FPGA row and the best tokens/s and tokens/J of each class."""
    board_rows = same_board(board)
    lo, hi = SIZE_BAND
    size_match = lo <= n_params <= hi
    fpga, best = [], {}
    if size_match:
        fpga = [p for p in published() if p.platform == "FPGA" and p not in board_rows]
        for p in published():
            b = best.setdefault(p.platform, {"tokens_per_s": p, "tokens_per_j": p})
            if p.tokens_per_s > b["tokens_per_s"].tokens_per_s:
                b["tokens_per_s"] = p
            if p.tokens_per_j > b["tokens_per_j"].tokens_per_j:
                b["tokens_per_j"] = p
    return {"same_board": board_rows, "same_size": size_match, "fpga": fpga, "best_by_platform": best}
