"""Property: whatever a user types or feeds in, the CLI exits 0 or 2, says what is wrong in one
stderr line, never shows a traceback, and changes no file outside its target folder.

Random bad values go to every numeric and text option; random corruptions of a real small
model file (.npz, .gguf), a board file and an engine project's manifest go to the commands
that read them.  In-process (``fpgallm.cli.main``) and derandomized: the same examples every
run, the whole module in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from fpgallm.cli import main
from fpgallm.model.gguf_file import save_gguf
from fpgallm.model.load import load_preset
from fpgallm.model.npz_file import save_npz
from fpgallm.paths import BOARDS_DIR
from tests.test_bad_input import MANIFEST, write_project

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _snapshot(root: Path, skip: Path | None) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for f in filenames:
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _contract(capsys, argv, sandbox: Path, target: Path | None = None) -> int:
    """Run ``fpgallm ARGV`` in ``sandbox``; check the error contract; the exit status."""
    before = _snapshot(sandbox, target)
    rc = main(argv)                     # an exception here is the traceback a user would see
    out = capsys.readouterr()
    assert rc in (0, 2), (argv, rc, out.err)
    assert "Traceback" not in out.err, out.err
    if rc == 2:
        assert out.err.count("\n") == 1 and out.err.endswith("\n") and out.err.startswith("fpgallm"), out.err
    assert _snapshot(sandbox, target) == before, f"{argv}: files outside the target changed"
    return rc


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder with the inputs and a folder of the user's own files."""
    root = tmp_path_factory.mktemp("fuzz")
    tiny = load_preset("tiny-llama")
    save_npz(tiny, root / "tiny.npz")
    save_gguf(tiny, root / "tiny.gguf")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("the user's own file")
    write_project(root / "proj")
    return root


@pytest.fixture
def here(sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    return sandbox


# --- random values for every option --------------------------------------------------------

SPECIAL = ["0", "-1", "1", "8", "9", "nan", "-nan", "inf", "-inf", "1e9", "1e400", "1e-9", "", " ", "0x10",
           "1.5", "2.5e2", "١٢", "\udcff", "99999999999999999999", "-0", "+3", "abc", "None", ".", "..", "/"]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.integers(-2**70, 2**70).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=6))

ESTIMATE = ["estimate", "tiny-llama", "--board", "kv260"]
# generate into a folder of the user's own: every value either is refused or reaches the
# --out check, which refuses the folder -- which must stay as it is
GENERATE = ["generate", "--board", "ulx3s", "--out", "mine"]
# a design the board cannot hold: refused after the --out check, before anything is written
TOO_BIG = ["generate", "--board", "ulx3s", "--design", "elementwise", "--lanes", "256"]
OPTIONS = ([(ESTIMATE, f) for f in ("--batch", "--context", "--weights", "--lanes", "--macs", "--ports",
                                     "--port-width", "--clock-mhz", "--vector-lanes", "--prefetch-words",
                                     "--activity", "--board")]
           + [(GENERATE, f) for f in ("--clock-mhz", "--ports", "--port-width", "--gemv-lanes", "--vector-lanes",
                                      "--prefetch-words", "--batch", "--context", "--lanes", "--board")]
           + [(["run", "tiny-llama", "--prompt", "hi"], "--max-new-tokens"),
              (["run", "tiny-llama", "--max-new-tokens", "2"], "--prompt"),
              (["test", "--project", "proj"], "--tokens"), (["test", "--project", "proj"], "--prompt"),
              (["test", "--project", "proj"], "--seed"), (["test"], "--project"),
              (TOO_BIG, "--out"), (["boards", "show"], None),
              (["estimate", "--board", "kv260"], None)])


@settings(FUZZ, max_examples=60)
@given(option=st.sampled_from(OPTIONS), value=VALUES)
def test_any_option_value(capsys, here, option, value):
    argv, flag = option
    # a value that starts with '-' is given as --flag=VALUE (else argparse reads it as an option)
    extra = [value] if flag is None else [f"{flag}={value}"]
    _contract(capsys, argv + extra, here)


# --- random corruptions of a real model file, board file and project manifest --------------

EDIT = st.tuples(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]), st.booleans(),
                st.integers(0, 2**31), st.binary(min_size=1, max_size=8))
EDITS = st.lists(EDIT, min_size=1, max_size=3)


def corrupt(data: bytes, edits) -> bytes:
    """``data`` after a few edits (drawn small, so a failing example prints short); positions
    near the start (the headers, the first 4 KiB) half of the time."""
    out = bytearray(data)
    for op, near, pos, blob in edits:
        i = pos % max(1, min(len(out), 4096) if near else len(out))
        if op == "flip" and out:
            out[i] ^= 1 << (blob[0] % 8)
        elif op == "set" and out:
            out[i] = blob[0]
        elif op == "truncate":
            del out[i:]
        elif op == "insert":
            out[i:i] = blob
        else:
            del out[i:i + 1 + blob[0] % 16]
    return bytes(out)


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                      st.text(max_size=5), st.just([]), st.just({}))


@st.composite
def edited_document(draw, doc):
    """``doc`` (parsed JSON or YAML) with one random value replaced or key deleted."""
    doc = json.loads(json.dumps(doc))
    node, path = doc, []
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        parent, node = node, node[key]
    if not path:
        return draw(JSON_LEAF)
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_LEAF)
    return doc


def _write_case(root: Path, name: str, data: bytes) -> Path:
    case = Path(tempfile.mkdtemp(dir=root))
    (case / name).write_bytes(data)
    return case / name


@settings(FUZZ, max_examples=25)
@given(edits=EDITS, kind=st.sampled_from(["npz", "gguf"]),
       command=st.sampled_from([["estimate", "{}", "--board", "kv260"],
                                ["run", "{}", "--prompt", "hi", "--max-new-tokens", "2"]]))
def test_corrupt_model_file(capsys, here, edits, kind, command):
    good = (here / f"tiny.{kind}").read_bytes()
    f = _write_case(here, f"m.{kind}", corrupt(good, edits))
    _contract(capsys, [a.format(f) for a in command], here)


@settings(FUZZ, max_examples=30)
@given(data=st.data(), edits=EDITS, as_bytes=st.booleans(),
       command=st.sampled_from([["boards", "show", "{}"], ["estimate", "tiny-llama", "--board", "{}"],
                                ["generate", "--board", "{}", "--out", "mine"]]))
def test_corrupt_board_file(capsys, here, data, edits, as_bytes, command):
    text = (BOARDS_DIR / "ulx3s.yaml").read_text()
    if as_bytes:
        raw = corrupt(text.encode(), edits)
    else:
        raw = yaml.safe_dump(data.draw(edited_document(yaml.safe_load(text))), allow_unicode=True).encode()
    f = _write_case(here, "ulx3s.yaml", raw)
    _contract(capsys, [a.format(f) for a in command], here)


@settings(FUZZ, max_examples=25)
@given(data=st.data(), edits=EDITS, as_bytes=st.booleans())
def test_corrupt_project_manifest(capsys, here, data, edits, as_bytes):
    project = Path(tempfile.mkdtemp(dir=here)) / "p"
    write_project(project)
    text = json.dumps(MANIFEST, indent=2)
    raw = corrupt(text.encode(), edits) if as_bytes else \
        json.dumps(data.draw(edited_document(MANIFEST))).encode()
    (project / "manifest.json").write_bytes(raw)
    # the stand-in project has no memory images: a manifest that passes every check stops there
    _contract(capsys, ["test", "--project", str(project), "--tokens", "2"], here)
