"""Greedy generation of up to ``batch`` prompts on an engine that runs one program per step.

:func:`greedy_schedule` is a generator shared by every engine (golden, RTL): it yields the
``(tokens, positions, chunk)`` of the next program run and receives the next-token ids the
run produced; it returns the generated ids per prompt.  Several prompts prefill token by
token together (sequences still in their prompt are fed the prompt's next token); a single
prompt on an engine of batch ``chunk`` > 1 prefills in *chunks*: runs whose lanes are up to
``chunk`` consecutive positions of that one sequence (``chunk`` True: every lane appends to
and attends over sequence 0's KV cache, so lane ``i`` sees the keys of the lanes before it),
then decodes one token a run.  A sequence stops after ``max_new_tokens``, at the end of the
context, or at ``eos`` (when ``stop_at_eos``).
"""

from __future__ import annotations

from collections.abc import Generator


def greedy_schedule(prompts: list[list[int]], max_new_tokens: int, context: int,
                    eos: int | None, stop_at_eos: bool = True, chunk: int = 1,
                    ) -> Generator[tuple[list[int], list[int], bool], list[int], list[list[int]]]:
    B = len(prompts)
    if any(not p for p in prompts):
        raise ValueError("generate_batch: empty prompt")
    pos = [0] * B
    outs: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    if B == 1 and chunk > 1 and 1 < len(prompts[0]) <= context:
        prompt = [int(t) for t in prompts[0]]
        while len(prompt) - pos[0] > 1:          # all but the last prompt token, in chunks
            k = min(chunk, len(prompt) - 1 - pos[0])
            yield prompt[pos[0]:pos[0] + k], list(range(pos[0], pos[0] + k)), k > 1
            pos[0] += k
    cur = [int(p[pos[b]]) for b, p in enumerate(prompts)]
    while not all(done):
        nxt = yield list(cur), [min(p, context - 1) for p in pos], False
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
    """Run ``schedule`` with a synchronous ``step(tokens, positions, chunk) -> next ids``."""
    try:
        run = next(schedule)
        while True:
            run = schedule.send(step(*run))
    except StopIteration as stop:
        return stop.value
