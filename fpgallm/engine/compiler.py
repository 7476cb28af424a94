"""Compiler: a quantized model + :class:`EngineParams` -> program, memory image, symbols.

``compile_model(model, params)`` returns a :class:`Compiled`:

* ``program``: the list of :class:`~fpgallm.engine.isa.Instruction` run once per token
  (docs/ISA.md, "Program of a model"); the host sets ``POS`` / ``TOKEN`` per sequence;
* ``image``: the off-chip memory image (:class:`MemoryImage`): every region has an address,
  a size in bytes and its content in the engine's integer form (weights packed by the GEMV
  packer :func:`fpgallm.units.gemv.pack`, norm weights, RoPE tables, biases, the KV cache);
* ``symbols``: region name -> address.

Numbers (decided here, executed by :mod:`fpgallm.engine.golden`):

* Every vector register holds signed 24-bit fixed point (``FX``) with a per-register
  fraction-bit count (its *format tag*), or, after ``QUANT``, block-scaled INT8 (one
  power-of-two exponent per group of 32, :mod:`fpgallm.units.quantize`).
* The fraction bits of each value (residual stream per layer, q/k/v, attention output,
  FFN hidden, logits ...) are chosen at compile time from one float-reference calibration
  pass (largest magnitude x 4 headroom must fit 24 bits, at most 22 fraction bits); they
  travel in the instructions' ``imm`` field, so the program is the whole contract.
* Weights stay exactly as stored (GGUF fp16 scales are exact in the packer's 12-bit
  mantissa form); f32 scales (per-channel INT8) are rounded to 12-bit mantissas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from fpgallm.engine.formats import ACT_GROUP, REG_BITS
from fpgallm.engine.isa import Instruction, Op, Sreg
from fpgallm.engine.params import EngineParams
from fpgallm.engine.kvlayout import kv_layer_bytes as _kv_layer_bytes
from fpgallm.errors import UserError
from fpgallm.model.model import Model, QuantizedModel, quantize_model
from fpgallm.model.quant import Q8_0, QuantScheme, QuantTensor
from fpgallm.model.spec import Architecture, RopeStyle
from fpgallm.units import gemv
from fpgallm.units.gemv import GemvOutput, GemvParams, PackedMatrix
from fpgallm.units.weights import WeightFormat

MAX_FRAC = 22
HEADROOM = 4.0
ROPE_FRAC = 14         # cos / sin table: Q1.14
LOGITS = 15            # V15: the logits buffer (max_vocab elements)

# mode codes --------------------------------------------------------------------------------
WFMT_CODE = {WeightFormat.INT8_ROW: 0, WeightFormat.INT8_GROUP: 1, WeightFormat.INT4_GROUP: 2,
             WeightFormat.INT4_GROUP_MIN: 3}
GROUP_CODE = {0: 0, 32: 1, 64: 2, 128: 3}
NORM_RMS, NORM_LAYER = 0, 1
ROPE_HALVES, ROPE_ADJACENT = 0, 1
ACT_SILU, ACT_GELU = 0, 1
LOADV_PLAIN, LOADV_POSROW = 0, 1


def wmode(fmt: WeightFormat, group: int) -> int:
    return WFMT_CODE[fmt] | (GROUP_CODE[group] << 2)


def wmode_decode(mode: int) -> tuple[WeightFormat, int]:
    fmt = {v: k for k, v in WFMT_CODE.items()}[mode & 3]
    group = {v: k for k, v in GROUP_CODE.items()}[(mode >> 2) & 3]
    return fmt, group


def scheme_format(s: QuantScheme) -> tuple[WeightFormat, int]:
    """The GEMV hardware format (and group, 0 = per row) of a model's quantization scheme."""
    if s.group is None:
        if s.bits == 8 and not s.with_min:
            return WeightFormat.INT8_ROW, 0
        raise UserError(f"quantization {s.name} has no GEMV format; supported: int8 per channel, "
                        "Q8_0/int8 groups, Q4_0/int4 groups, Q4_1/int4 groups with minimum")
    if s.bits == 8:
        if s.with_min:
            raise UserError(f"quantization {s.name} has no GEMV format (8-bit with minimum)")
        return WeightFormat.INT8_GROUP, s.group
    return (WeightFormat.INT4_GROUP_MIN if s.with_min else WeightFormat.INT4_GROUP), s.group


ACT_EXP_MAX = REG_BITS - 7   # largest exponent of a block-scaled register group (24 -> INT8)


def engine_gemv_params(p: EngineParams, fmt: WeightFormat) -> GemvParams:
    """The GEMV hardware of ``p`` for one weight format: the whole memory word
    (``mem_ports * port_width`` bits) feeds ``gemv_lanes`` lanes each cycle; block-scaled
    activations (exponents up to :data:`ACT_EXP_MAX`); grouped formats take the group
    (32/64/128) per instruction.  ``guard`` is the largest value <= 8 whose row accumulator
    fits 62 bits (less than 8 only for very long rows, e.g. 14336 columns of INT8)."""
    max_cols = -(-max(p.max_dim, p.max_ffn) // 128) * 128
    max_rows = -(-max(p.max_dim, p.max_ffn, p.max_vocab) // p.gemv_lanes) * p.gemv_lanes
    err = None
    for guard in range(8, -1, -1):
        try:
            return GemvParams(fmt=fmt, lanes=p.gemv_lanes, word_bits=p.mem_ports * p.port_width,
                              group=128 if fmt.grouped else 0, max_cols=max_cols, max_rows=max_rows,
                              output=GemvOutput.WIDE, act_exp_max=ACT_EXP_MAX,
                              runtime_group=fmt.grouped, guard=guard)
        except ValueError as e:
            err = e
            if "accumulator width" not in str(e):
                break
    raise UserError(f"engine GEMV cannot stream {fmt.value}: {err}") from None


def gemv_params(p: EngineParams, fmt: WeightFormat, group: int) -> GemvParams:
    """The packing parameters of a ``fmt`` matrix with ``group`` (0: per row) for ``p``:
    :func:`engine_gemv_params` with the matrix's own group."""
    hw = engine_gemv_params(p, fmt)
    return replace(hw, group=group, runtime_group=False)


# memory image ------------------------------------------------------------------------------

@dataclass
class Region:
    name: str
    addr: int
    nbytes: int
    kind: str                 # "matrix", "vector", "table", "kv", "logits"
    data: object = None       # PackedMatrix, int array, dict for KV
    meta: dict = field(default_factory=dict)


@dataclass
class MemoryImage:
    """Flat byte address space striped over the memory ports: byte ``a`` is on port
    ``(a // port_bytes) % ports``.  Every region starts on a stripe boundary
    (``ports * port_bytes``), so each region streams from all ports at once."""

    ports: int
    port_bytes: int
    regions: list[Region] = field(default_factory=list)
    by_addr: dict[int, Region] = field(default_factory=dict)
    top: int = 0

    @property
    def stripe(self) -> int:
        return self.ports * self.port_bytes

    def add(self, name: str, nbytes: int, kind: str, data=None, **meta) -> Region:
        addr = -(-self.top // self.stripe) * self.stripe
        r = Region(name, addr, int(nbytes), kind, data, meta)
        self.regions.append(r)
        self.by_addr[addr] = r
        self.top = addr + max(int(nbytes), 1)
        return r

    def port_of(self, addr: int) -> int:
        return (addr // self.port_bytes) % self.ports

    @property
    def nbytes(self) -> int:
        return self.top

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.regions:
            out[r.kind] = out.get(r.kind, 0) + r.nbytes
        return out


MATRIX_HEADER_BITS = 64   # acc_exp (16, signed) | stripe words per row tile (24) | row tiles (24)


def matrix_bytes(pm: PackedMatrix) -> int:
    """Bytes of a matrix region: one header stripe word, then every row tile in the GEMV's
    single-stream layout (:meth:`GemvParams.tile_stream_words`; docs/matrix-engines.md,
    "Matrix in memory"); exactly ``len(x_gemv.matrix_image(pm, params))``."""
    p = pm.params
    wb = p.word_bits // 8
    header = -(-MATRIX_HEADER_BITS // p.word_bits)
    return wb * (header + (pm.rows // p.lanes) * p.tile_stream_words(pm.cols))


MATRIX_READ_ORDER = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def read_order(names: list[str]) -> list[str]:
    """The matrices in the order the program reads them (the order of their regions in
    memory, so that the GEMVs of a whole decode step read one stream): the embedding table
    when it is not also the LM head, every layer's projections in :data:`MATRIX_READ_ORDER`,
    the LM head."""
    def key(item):
        i, n = item
        if n.startswith("blk."):
            _blk, layer, kind = n.split(".")[:3]
            rank = MATRIX_READ_ORDER.index(kind) if kind in MATRIX_READ_ORDER else len(MATRIX_READ_ORDER)
            return (1, int(layer), rank, i)
        return (0 if i == 0 and len(names) > 1 and n == "token_embd.weight" else 2, 0, 0, i)
    return [n for _i, n in sorted(enumerate(names), key=key)]


def prefetch_streams(prog: list[Instruction], img: MemoryImage) -> list[tuple[int, int, int]]:
    """The weight streams of a program: maximal runs of GEMVs, in program order, whose
    matrices follow one another in memory, as ``(insert_at, addr, stripe words)``:
    ``insert_at`` is where its ``PREFETCH`` goes (the start of the program, or just after
    the last GEMV of the previous stream, when that one has been read to its end)."""
    out: list[list[int]] = []
    end = None
    for i, ins in enumerate(prog):
        if ins.op is not Op.GEMV:
            continue
        r = img.by_addr[ins.addr]
        if out and ins.addr == end:
            out[-1][2] += r.nbytes
            out[-1][3] = i
        else:
            out.append([0 if not out else out[-1][3] + 1, ins.addr, r.nbytes, i])
        end = ins.addr + r.nbytes
    return [(at, addr, nbytes // img.stripe) for at, addr, nbytes, _last in out]


def with_prefetch(prog: list[Instruction], marks: dict[str, int], img: MemoryImage):
    """``prog`` with a ``PREFETCH`` for each of its :func:`prefetch_streams`, and ``marks``
    moved with the instructions."""
    streams = prefetch_streams(prog, img)
    at = {a: Instruction(Op.PREFETCH, n=w & 0xFFFFF, m=w >> 20, addr=addr) for a, addr, w in streams}
    out: list[Instruction] = []
    moved: dict[int, int] = {}
    for i, ins in enumerate(prog):
        if i in at:
            out.append(at[i])
        moved[i] = len(out)
        out.append(ins)
    return out, {k: moved[v] for k, v in marks.items()}


# compiled result ---------------------------------------------------------------------------

@dataclass
class Compiled:
    model_name: str
    spec: object
    params: EngineParams
    program: list[Instruction]
    image: MemoryImage
    symbols: dict[str, int]
    context: int
    fracs: dict[str, int]
    marks: dict[str, int] = field(default_factory=dict)   # value name -> index of the producing instruction

    def listing(self) -> str:
        return "\n".join(ins.text() for ins in self.program)


class _Fit:
    def __init__(self, name):
        self.name = name

    def check(self, what: str, need, have, have_name: str):
        if need > have:
            raise UserError(f"{self.name} does not fit the engine: {what} needs {need}, "
                            f"the engine has {have_name}={have}")


def _frac(maxabs: float) -> int:
    if not np.isfinite(maxabs) or maxabs <= 0:
        return MAX_FRAC
    ib = math.ceil(math.log2(maxabs * HEADROOM))
    return int(min(MAX_FRAC, max(0, REG_BITS - 1 - ib)))


# generic text (prose, punctuation, blank lines, digits, code): delimiter tokens such as a
# blank line carry the large "massive activations" of small llamas, so they must be seen
CALIB_TEXT = ("The quick brown fox jumps over the lazy dog. It was a sunny day in the small town.\n\n"
              "Question: What is 12 + 30?\nAnswer: 42.\n\n"
              "def add(a, b):\n    return a + b\n\n"
              "Once upon a time, there was a princess who lived in a castle; she liked books!")


def calibrate(model: Model, ids=None) -> dict[str, int]:
    """Fraction bits of every value of the program, from one float-reference pass."""
    from fpgallm.model.reference import Reference
    s = model.spec
    if ids is None:
        bos = [s.bos_token_id] if s.bos_token_id is not None else []
        tok = model.tokenizer
        if tok is not None:
            ids = tok.encode(CALIB_TEXT)
        else:
            rng = np.random.default_rng(0)
            ids = bos + [int(t) for t in rng.integers(0, s.vocab_size, 31)]
        ids = [t for t in ids if 0 <= t < s.vocab_size][:min(s.max_seq_len, 96)]
    ref = Reference(model)
    tr: dict = {}
    ref.forward(ids, ref.new_cache(len(ids)), trace=tr)
    mx = lambda a: float(np.abs(a).max())  # noqa: E731
    f = {"embd": _frac(mx(tr["embd"]))}
    gpt2 = s.arch is Architecture.GPT2
    for i in range(s.n_layers):
        b = f"blk.{i}."
        mid = tr[b + "out"] - tr[b + "ffn_out"]
        f[b + "mid"] = _frac(mx(mid))
        f[b + "out"] = _frac(mx(tr[b + "out"]))
        for k in ("attn_in", "q", "k", "v", "attn", "attn_out", "ffn_in", "ffn_hidden", "ffn_out"):
            f[b + k] = _frac(mx(tr[b + k]))
        fin = tr[b + "ffn_in"]
        up = fin @ model.dense(b + "ffn_up.weight").T
        if gpt2:
            up = up + model.dense(b + "ffn_up.bias")
            f[b + "gate"] = _frac(mx(up))
        else:
            f[b + "gate"] = _frac(mx(fin @ model.dense(b + "ffn_gate.weight").T))
            f[b + "up"] = _frac(mx(up))
        # the outputs added into the residual stream get at least the residual's range
        f[b + "attn_out"] = min(f[b + "attn_out"], f[b + "mid"])
        f[b + "ffn_out"] = min(f[b + "ffn_out"], f[b + "out"])
    f["output_norm"] = _frac(mx(tr["output_norm"]))
    f["logits"] = _frac(mx(tr["logits"]))
    return f


def row_bytes(n: int, stripe: int) -> int:
    """Bytes of an int32 row of ``n`` elements padded to whole stripe words (LOADV / STOREV rows)."""
    return -(-4 * n // stripe) * stripe


def _int_vec(v, frac: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.clip(np.floor(v * 2.0 ** frac + 0.5), -(1 << (REG_BITS - 1)),
                   (1 << (REG_BITS - 1)) - 1).astype(np.int64)


NORM_EPS_MANT_BITS = 12


def norm_eps_field(eps: float) -> int:
    """``eps`` as the NORM instruction's ``m`` field: ``mant | exp << 12``, ``eps ~ mant *
    2**-exp`` with a 12-bit mantissa (top bit set) and an 8-bit exponent."""
    if not 0 < eps < 1:
        raise UserError(f"norm eps must be in (0, 1), got {eps!r}")
    ex = NORM_EPS_MANT_BITS - 1 - math.floor(math.log2(eps))
    mant = int(math.floor(eps * 2.0 ** ex + 0.5))
    if mant >> NORM_EPS_MANT_BITS:
        mant, ex = mant >> 1, ex - 1
    if not 0 <= ex < 256:
        raise UserError(f"norm eps {eps!r} outside the encodable range [2**-244, 1)")
    return mant | ex << NORM_EPS_MANT_BITS


def _coef_frac(v, width: int = 16) -> int:
    """Fraction bits of a ``width``-bit signed coefficient vector (norm gamma / beta)."""
    m = float(np.abs(np.asarray(v, dtype=np.float64)).max())
    if m == 0:
        return width - 2
    return int(min(width - 2, max(0, width - 2 - math.floor(math.log2(m)))))


def pack_tensor(t: QuantTensor, gp: GemvParams) -> PackedMatrix:
    """A model's quantized matrix in the GEMV's packed form, rows padded to the lanes
    (a :class:`TensorShape` gives the :class:`MatrixShape` of that packed form)."""
    rows, cols = t.shape
    pad = (-rows) % gp.lanes
    if isinstance(t, TensorShape):
        return MatrixShape(gp, rows + pad, cols)
    q = t.q.astype(np.int64)
    d = t.scale.astype(np.float64)
    m = None if t.min is None else t.min.astype(np.float64)
    if pad:
        q = np.concatenate([q, np.zeros((pad, cols), np.int64)])
        d = np.concatenate([d, np.zeros((pad, d.shape[1]))])
        if m is not None:
            m = np.concatenate([m, np.zeros((pad, m.shape[1]))])
    pm = gemv.pack(gp, q, d, m)
    # keep the integer weights compact (int8); the goldens widen them when computing
    return replace(pm, q=pm.q.astype(np.int8 if gp.fmt.is_signed else np.uint8))


def model_weight_formats(model: Model, scheme: QuantScheme | None = None) -> tuple[WeightFormat, ...]:
    """The GEMV weight formats :func:`compile_model` maps ``model`` onto (sorted by name)."""
    s = model.spec
    if isinstance(model, (QuantizedModel, ShapeModel)):
        schemes = [model.scheme_of(n) for n in s.matrix_names()]
    elif scheme is None and all(isinstance(model.tensors[n], QuantTensor) for n in s.matrix_names()):
        schemes = [QuantizedModel.from_model(model).scheme_of(n) for n in s.matrix_names()]
    else:
        schemes = [scheme or Q8_0]
    return tuple(sorted({scheme_format(x)[0] for x in schemes}, key=lambda f: f.value))


def compile_model(model: Model, params: EngineParams | None = None, scheme: QuantScheme | None = None,
                  context: int | None = None, calib_ids=None) -> Compiled:
    """Compile ``model`` for ``params``.  A float model is quantized with ``scheme``
    (default Q8_0); a quantized one is used as stored."""
    params = params or EngineParams()
    s = model.spec
    fit = _Fit(s.name)
    shapes_only = isinstance(model, ShapeModel)
    if not isinstance(model, QuantizedModel) and not shapes_only:
        if all(isinstance(model.tensors[n], QuantTensor) for n in s.matrix_names()) and scheme is None:
            model = QuantizedModel.from_model(model)
        else:
            model = quantize_model(model, scheme or Q8_0)
    gpt2 = s.arch is Architecture.GPT2
    ctx = min(context or min(params.max_context, s.max_seq_len), s.max_seq_len)
    # --- resources on chip
    fit.check("d_model", s.d_model, params.max_dim, "max_dim")
    fit.check("d_ffn", s.d_ffn, params.max_ffn, "max_ffn")
    fit.check("vocab_size", s.vocab_size, params.max_vocab, "max_vocab")
    fit.check("context", ctx, params.max_context, "max_context")
    if s.d_model % ACT_GROUP or s.d_ffn % ACT_GROUP:
        raise UserError(f"{s.name} does not fit the engine: d_model={s.d_model} and d_ffn={s.d_ffn} "
                        f"must be multiples of the activation group {ACT_GROUP}")
    fit.check("vector registers", 8, params.vregs, "vregs")
    fit.check("head_dim", s.head_dim, params.max_head_dim, "max_head_dim")
    if s.head_dim % params.vector_lanes and s.n_heads > 1:
        raise UserError(f"{s.name} does not fit the engine: head_dim={s.head_dim} must be a "
                        f"multiple of vector_lanes={params.vector_lanes}")
    fmts = {}
    for n in s.matrix_names():
        fmt, group = scheme_format(model.scheme_of(n))
        if fmt not in params.weight_formats:
            raise UserError(f"{s.name} does not fit the engine: {n} is stored as {fmt.value}, "
                            f"the engine streams {', '.join(f.value for f in params.weight_formats)}")
        fmts[n] = (fmt, group)
    fracs = model.fracs() if shapes_only else calibrate(model, calib_ids)
    B = params.batch
    img = MemoryImage(params.mem_ports, params.port_width // 8)
    sym: dict[str, int] = {}

    def add(name, nbytes, kind, data=None, **meta):
        r = img.add(name, nbytes, kind, data, **meta)
        sym[name] = r.addr
        return r.addr

    mats: dict[str, PackedMatrix] = {}
    for n in read_order(s.matrix_names()):
        fmt, group = fmts[n]
        pm = pack_tensor(model.tensors[n], gemv_params(params, fmt, group))
        mats[n] = pm
        add(n, matrix_bytes(pm), "matrix", pm, fmt=fmt, group=group, rows=model.tensors[n].shape[0])
    if not s.tied_embeddings and "token_embd.weight" not in mats:  # pragma: no cover
        raise UserError("token_embd.weight must be quantized")

    def vec(name, values, frac, kind="vector"):
        arr = _int_vec(values, frac)
        return add(name, 4 * arr.size, kind, arr, frac=frac)

    def norm_params(prefix, out_frac):
        gamma = model.dense(prefix + ".weight")
        gf = _coef_frac(gamma)
        beta = model.dense(prefix + ".bias") if gpt2 else None
        bf = min(_coef_frac(beta), out_frac) if beta is not None else 0
        g = np.clip(np.floor(gamma.astype(np.float64) * 2.0 ** gf + 0.5), -32768, 32767).astype(np.int64)
        data = {"gamma": g, "gamma_frac": gf}
        if beta is not None:
            data["beta"] = np.clip(np.floor(beta.astype(np.float64) * 2.0 ** bf + 0.5),
                                   -32768, 32767).astype(np.int64)
            data["beta_frac"] = bf
        addr = add(prefix, 2 * g.size * (2 if beta is not None else 1), "vector", data)
        return addr, gf, bf

    hd = s.head_dim
    rope_addr = 0
    if not gpt2:
        inv = 1.0 / (s.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        ang = np.arange(ctx, dtype=np.float64)[:, None] * inv[None, :]
        tab = {"cos": np.floor(np.cos(ang) * (1 << ROPE_FRAC) + 0.5).astype(np.int64),
               "sin": np.floor(np.sin(ang) * (1 << ROPE_FRAC) + 0.5).astype(np.int64)}
        # rows of hd/2 (cos, sin) int16 pairs padded to whole stripe words (x_rope.rope_image)
        sb = params.mem_ports * params.port_width // 8
        rope_addr = add("rope_table", ctx * (-(-2 * hd // sb)) * sb, "table", tab)
    pos_addr = 0
    if gpt2:
        pe = model.dense("position_embd.weight")[:ctx]
        arr = _int_vec(pe, fracs["embd"])    # one row per position, rows stripe aligned (LOADV mode 1)
        pos_addr = add("position_embd.weight", arr.shape[0] * row_bytes(arr.shape[1], img.stripe),
                       "table", arr, frac=fracs["embd"])
    kv_layer_bytes = _kv_layer_bytes(params, hd, s.n_kv_heads)   # layout: engine/kvlayout.py
    fit.check("off-chip memory (bytes) for weights, tables and KV cache",
              img.top + s.n_layers * kv_layer_bytes + B * 4 * s.vocab_size, params.mem_bytes, "mem_bytes")

    prog: list[Instruction] = []
    marks: dict[str, int] = {}
    I = lambda op, **kw: prog.append(Instruction(op, **kw))  # noqa: E731
    d, kvd, F, V = s.d_model, s.kv_dim, s.d_ffn, s.vocab_size

    def gemv_(dst, a, name, out_frac):
        fmt, group = fmts[name]
        rows, cols = model.tensors[name].shape
        I(Op.GEMV, dst=dst, a=a, mode=wmode(fmt, group), n=rows, m=cols, addr=sym[name], imm=out_frac)

    def bias_add(dst, name, frac, n):
        if gpt2:
            I(Op.LOADV, dst=7, n=n, addr=vec(name, model.dense(name), frac), imm=frac)
            I(Op.EWADD, dst=dst, a=dst, b=7, n=n, imm=frac)

    emb = "token_embd.weight"
    fe, ge = fmts[emb]
    I(Op.EMBED, dst=0, mode=wmode(fe, ge), n=d, addr=sym[emb], imm=fracs["embd"])
    if gpt2:
        I(Op.LOADV, dst=7, mode=LOADV_POSROW, n=d, addr=pos_addr, imm=fracs["embd"])
        I(Op.EWADD, dst=0, a=0, b=7, n=d, imm=fracs["embd"])
    nk = NORM_LAYER if gpt2 else NORM_RMS
    eps_m = norm_eps_field(float(s.norm_eps))
    act = ACT_GELU if gpt2 else ACT_SILU
    rstyle = ROPE_ADJACENT if s.rope_style is RopeStyle.ADJACENT else ROPE_HALVES
    for i in range(s.n_layers):
        b = f"blk.{i}."
        fr = lambda k: fracs[b + k]  # noqa: E731
        kv_addr = add(b + "kv", kv_layer_bytes, "kv", None, layer=i, k_frac=fr("k"), v_frac=fr("v"))
        na, gf, bf = norm_params(b + "attn_norm", fr("attn_in"))
        I(Op.NORM, dst=1, a=0, mode=nk, n=d, m=eps_m, addr=na, imm=fr("attn_in") | gf << 8 | bf << 16)
        I(Op.QUANT, dst=1, a=1, n=d)
        gemv_(2, 1, b + "attn_q.weight", fr("q"))
        bias_add(2, b + "attn_q.bias", fr("q"), d)
        gemv_(3, 1, b + "attn_k.weight", fr("k"))
        bias_add(3, b + "attn_k.bias", fr("k"), kvd)
        gemv_(4, 1, b + "attn_v.weight", fr("v"))
        bias_add(4, b + "attn_v.bias", fr("v"), kvd)
        if not gpt2:
            I(Op.ROPE, dst=2, a=2, mode=rstyle, n=hd, m=s.n_heads, addr=rope_addr)
            I(Op.ROPE, dst=3, a=3, mode=rstyle, n=hd, m=s.n_kv_heads, addr=rope_addr)
        I(Op.KVAPPEND, a=3, b=4, n=kvd, m=hd, addr=kv_addr)
        I(Op.ATTN, dst=5, a=2, n=hd, m=s.n_heads | s.n_kv_heads << 10, addr=kv_addr,
          imm=fr("attn") | fr("k") << 8 | fr("v") << 16)
        I(Op.QUANT, dst=5, a=5, n=d)
        gemv_(6, 5, b + "attn_output.weight", fr("attn_out"))
        bias_add(6, b + "attn_output.bias", fr("attn_out"), d)
        I(Op.EWADD, dst=0, a=0, b=6, n=d, imm=fr("mid"))
        na, gf, bf = norm_params(b + "ffn_norm", fr("ffn_in"))
        I(Op.NORM, dst=1, a=0, mode=nk, n=d, m=eps_m, addr=na, imm=fr("ffn_in") | gf << 8 | bf << 16)
        I(Op.QUANT, dst=1, a=1, n=d)
        gemv_(2, 1, b + ("ffn_up.weight" if gpt2 else "ffn_gate.weight"), fr("gate"))
        if gpt2:
            bias_add(2, b + "ffn_up.bias", fr("gate"), F)
            I(Op.ACT, dst=2, a=2, mode=act, n=F, imm=fr("ffn_hidden"))
        else:
            gemv_(3, 1, b + "ffn_up.weight", fr("up"))
            I(Op.ACT, dst=2, a=2, mode=act, n=F, imm=fr("gate"))
            I(Op.EWMUL, dst=2, a=2, b=3, n=F, imm=fr("ffn_hidden"))
        I(Op.QUANT, dst=2, a=2, n=F)
        gemv_(6, 2, b + "ffn_down.weight", fr("ffn_out"))
        bias_add(6, b + "ffn_down.bias", fr("ffn_out"), d)
        I(Op.EWADD, dst=0, a=0, b=6, n=d, imm=fr("out"))
        marks[b + "out"] = len(prog) - 1
    na, gf, bf = norm_params("output_norm", fracs["output_norm"])
    I(Op.NORM, dst=1, a=0, mode=nk, n=d, m=eps_m, addr=na, imm=fracs["output_norm"] | gf << 8 | bf << 16)
    I(Op.QUANT, dst=1, a=1, n=d)
    head = emb if s.tied_embeddings else "output.weight"
    gemv_(LOGITS, 1, head, fracs["logits"])
    logits_addr = add("logits", B * row_bytes(V, img.stripe), "logits")
    marks["logits"] = len(prog) - 1
    I(Op.STOREV, a=LOGITS, n=V, addr=logits_addr)
    I(Op.ARGMAX, dst=int(Sreg.TOKEN), a=LOGITS, n=V)
    I(Op.HALT)
    if params.prefetch_words:
        prog, marks = with_prefetch(prog, marks, img)
    add("program", len(prog) * 16, "program", prog)
    fit.check("off-chip memory (bytes)", img.top, params.mem_bytes, "mem_bytes")
    return Compiled(s.name, s, params, prog, img, sym, ctx, fracs, marks)


# weights-free compilation (the estimator) ---------------------------------------------------

@dataclass(frozen=True)
class TensorShape:
    """A quantized matrix known only by its shape and scheme (no values)."""

    shape: tuple[int, int]
    scheme: QuantScheme


@dataclass(frozen=True)
class MatrixShape:
    """Shape-only stand-in for a :class:`~fpgallm.units.gemv.PackedMatrix` (rows padded to
    the lanes): what the cycle model and :func:`matrix_bytes` read (``params``, ``rows``,
    ``cols``, the shape of ``dm``), without weights."""

    params: GemvParams
    rows: int
    cols: int

    @property
    def dm(self) -> np.ndarray:
        """A zero-stride array of the scale mantissas' shape ``(rows, groups)`` (no data)."""
        groups = self.cols // self.params.group if self.params.fmt.grouped else 1
        return np.broadcast_to(np.int16(0), (self.rows, groups))


class _Fracs(dict):
    """Fraction bits of a shape-only compile: every value gets ``SHAPE_FRAC`` (the
    fractions only travel in ``imm`` fields; they change no cycle count or region size)."""

    def __missing__(self, key):
        return SHAPE_FRAC


SHAPE_FRAC = 16


class ShapeModel:
    """A model without weights: its spec, one :class:`QuantScheme` for every matrix, zero
    vectors for norms, biases and position tables.  :func:`compile_model` gives it the same
    program and memory layout as a real model of that spec and scheme (region contents are
    shape descriptors or zeros)."""

    def __init__(self, spec, scheme: QuantScheme | dict[str, QuantScheme]):
        self.spec = spec
        self.tokenizer = None
        shapes = spec.tensor_shapes()
        schemes = scheme if isinstance(scheme, dict) else {n: scheme for n in spec.matrix_names()}
        self.tensors = {n: TensorShape(shapes[n], schemes[n]) for n in spec.matrix_names()}
        self._shapes = shapes

    @property
    def name(self) -> str:
        return self.spec.name

    def scheme_of(self, name: str) -> QuantScheme:
        return self.tensors[name].scheme

    def dense(self, name: str) -> np.ndarray:
        """Zeros of a vector or table's shape (matrices have no values here)."""
        if name in self.tensors:
            raise TypeError(f"ShapeModel: {name} is a matrix without weights")
        return np.zeros(self._shapes[name], np.float32)

    def fracs(self) -> dict[str, int]:
        return _Fracs()


def compile_shapes(spec, params: EngineParams | None = None,
                   scheme: QuantScheme | dict[str, QuantScheme] | None = None,
                   context: int | None = None) -> Compiled:
    """Compile a model known only by its ``spec`` with every matrix in ``scheme`` (default
    Q8_0; or a dict matrix name -> scheme): the same program, memory layout, region sizes
    and fit checks as :func:`compile_model` on a model with weights of that spec and
    scheme, without weights (regions hold :class:`MatrixShape` descriptors; the cycle
    model needs no more)."""
    from fpgallm.model.quant import quantize_spec_check

    scheme = scheme or Q8_0
    for s in (set(scheme.values()) if isinstance(scheme, dict) else {scheme}):
        try:
            quantize_spec_check(spec, s)
        except ValueError as e:
            raise UserError(f"{spec.name} cannot be stored as {s.name}: {e}") from None
    return compile_model(ShapeModel(spec, scheme), params, context=context)
