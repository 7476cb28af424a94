"""Greedy generation of up to ``batch`` prompts on an engine that runs one program per step.

:func:`greedy_schedule` is a generator shared by every engine (golden, RTL): it yields the
``(tokens, positions)`` of the next program run and receives the next-token ids the run
produced; it returns the generated ids per prompt.  Prefill is token by token; sequences
still in their prompt are fed the prompt's next token; a sequence stops after
``max_new_tokens``, at the end of the context, or at ``eos`` (when ``stop_at_eos``).
"""

from __future__ import annotations

from collections.abc import Generator


def greedy_schedule(prompts: list[list[int]], max_new_tokens: int, context: int,
                    eos: int | None, stop_at_eos: bool = True,
                    ) -> Generator[tuple[list[int], list[int]], list[int], list[list[int]]]:
    B = len(prompts)
    if any(not p for p in prompts):
        raise ValueError("generate_batch: empty prompt")
    pos = [0] * B
    outs: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    cur = [int(p[0]) for p in prompts]
    while not all(done):
        nxt = yield list(cur), [min(p, context - 1) for p in pos]
        for b in range(B):
            if done[b]:
                continue
            pos[b] += 1
            if pos[b] < len(prompts[b]):
                cur[b] = int(prompts[b][pos[b]])
                continue
            t = int(nxt[b])
            outs[b].append(t)
            cur[b] = t
            if len(outs[b]) >= max_new_tokens or pos[b] >= context or \
                    (stop_at_eos and eos is not None and t == eos):
                done[b] = True
    return outs


def drive(schedule, step) -> list[list[int]]:
    """Run ``schedule`` with a synchronous ``step(tokens, positions) -> next ids``."""
    try:
        tokens, positions = next(schedule)
        while True:
            tokens, positions = schedule.send(step(tokens, positions))
    except StopIteration as stop:
        return stop.value
