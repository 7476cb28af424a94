"""``fpgallm run MODEL --engine rtl``: the model compiled exactly as for ``--engine golden``,
run on the engine RTL in Verilator (:class:`fpgallm.engine.rtl.simrun.RtlSim`).

Generation (prefill token by token, then greedy decode) runs inside one simulation; the
build, each program run and its simulated cycles are reported on stderr.
"""

from __future__ import annotations

import sys

from fpgallm.engine import compiler as C
from fpgallm.engine.golden import default_params
from fpgallm.engine.params import EngineParams


class RtlEngine:
    def __init__(self, model, params: EngineParams | None = None, scheme=None, context: int | None = None,
                 log=None):
        from fpgallm.engine.rtl.simrun import RtlSim

        params = params or default_params(model.spec, context, C.model_weight_formats(model, scheme))
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.compiled = C.compile_model(model, params, scheme=scheme, context=context)
        self.log(f"fpgallm: building the engine RTL for {model.spec.name} (cached after the first time)")
        self.sim = RtlSim(self.compiled, log=self.log, progress=True)
        self.cycles: list[int] = []

    def generate_batch(self, prompts, max_new_tokens, stop_at_eos: bool = True):
        outs, cycles = self.sim.generate([list(p) for p in prompts], max_new_tokens, stop_at_eos)
        self.cycles = cycles
        return outs

    def generate(self, prompt_ids, max_new_tokens):
        if max_new_tokens <= 0:
            return []
        return self.generate_batch([list(prompt_ids)], max_new_tokens)[0]

    def report(self) -> dict:
        runs = max(len(self.cycles), 1)
        cpt = sum(self.cycles) / runs
        p = self.compiled.params
        return {"runs": len(self.cycles), "cycles": sum(self.cycles), "cycles_per_token": cpt,
                "tokens_per_s": p.clock_mhz * 1e6 / max(cpt, 1)}
