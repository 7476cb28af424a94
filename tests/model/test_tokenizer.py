import pytest

from fpgallm.model.tokenizer import byte_level, from_tokenizer_json

TEXTS = ["Hello, world!", "naïve café — ünïcödé 漢字 🙂", "  two  spaces\nand\ttabs", "12345 + 678 = 13023"]


@pytest.mark.parametrize("text", TEXTS)
def test_byte_level_is_one_token_per_byte(text):
    t = byte_level()
    ids = t.encode(text)
    assert ids == [256] + list(text.encode("utf-8"))
    assert t.decode(ids) == text and t.vocab_size == 258


def test_byte_level_specials():
    t = byte_level()
    assert t.encode("a<|eos|>") == [256, 97, 257]
    assert t.decode([97, 257], skip_special=False) == "a<|eos|>"


@pytest.mark.parametrize("text", TEXTS + ["<|im_start|>user\nHi<|im_end|>"])
def test_gguf_tokenizer_round_trips(smollm2, text):
    t = smollm2.tokenizer
    assert t.decode(t.encode(text), skip_special=False) == text


def test_gguf_tokenizer_specials_and_digits(smollm2):
    t = smollm2.tokenizer
    assert t.vocab_size == 49152 and t.bos_id == 1 and t.eos_id == 2 and t.encode("Hello") == [19556]  # no BOS added
    assert t.encode("<|im_start|>")[0] == 1 and len(t.encode("<|im_start|>")) == 1
    assert len(t.encode("12345")) == 5          # smollm pre-tokenizer splits digits


def test_tokenizer_json_round_trip(smollm2, tmp_path):
    f = tmp_path / "tokenizer.json"
    f.write_text(smollm2.tokenizer.to_json())
    t = from_tokenizer_json(f, 1, 2)
    for text in TEXTS:
        assert t.encode(text) == smollm2.tokenizer.encode(text)
