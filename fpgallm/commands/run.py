"""``fpgallm run MODEL --prompt TEXT``: greedy generation with an inference engine."""

from __future__ import annotations

import json
import time

from fpgallm import cli_args as A
from fpgallm.errors import UserError

NAME = "run"
HELP = "generate a continuation of a prompt (MODEL: preset, .gguf, HF directory or .npz)"


def configure(p):
    p.add_argument("model", metavar="MODEL", help="a preset (fpgallm models), a .gguf, a Hugging Face "
                   "directory or an .npz")
    p.add_argument("--prompt", type=A.text, required=True, help="the prompt text")
    p.add_argument("--max-new-tokens", type=A.positive_int, default=32, metavar="N", help="tokens to generate (default 32)")
    from fpgallm.model.engines import engines

    p.add_argument("--engine", default="float",
                   help=f"inference engine: {', '.join(engines())} (default float)")
    p.add_argument("--chat", action="store_true",
                   help="wrap the prompt in the ChatML template (<|im_start|>user ... assistant) of instruct models")
    p.add_argument("--json", action="store_true",
                   help="one JSON document: model, engine, prompt ids, generated ids, text, seconds "
                        "(and, for the golden and rtl engines, cycles per token)")


def run(args) -> int:
    from fpgallm.model.engines import make_engine
    from fpgallm.model.load import load_model

    from fpgallm.model.engines import engines

    if args.engine not in engines():
        raise UserError(f"unknown engine {args.engine!r}; available: {', '.join(engines())}")
    model = load_model(args.model)
    tk = model.tokenizer
    if tk is None:
        raise UserError(f"model {args.model!r} has no tokenizer (a GGUF needs tokenizer.ggml.* metadata, "
                        "an HF directory a tokenizer.json)")
    prompt = args.prompt
    if args.chat:
        prompt = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    ids = tk.encode(prompt)
    if not ids:
        raise UserError("--prompt: the prompt encodes to no tokens")
    if len(ids) + args.max_new_tokens > model.spec.max_seq_len:
        raise UserError(f"prompt ({len(ids)} tokens) + --max-new-tokens {args.max_new_tokens} exceed "
                        f"the context of {model.spec.max_seq_len}")
    engine = make_engine(args.engine, model)
    t0 = time.perf_counter()
    out = engine.generate(ids, args.max_new_tokens)
    seconds = time.perf_counter() - t0
    text = tk.decode(out)
    if args.json:
        print(json.dumps({"model": model.spec.name, "engine": args.engine, "prompt": args.prompt,
                          "prompt_ids": ids, "generated_ids": out, "text": text,
                          "seconds": round(seconds, 4),
                          **({"engine_report": engine.report()} if hasattr(engine, "report") else {})}))
    else:
        print(text)
    return 0
