"""Text probes: sequences cut from real text (``text``), and segments of it repeated (``repeated_text``).

Olsson et al. (2022) measure induction heads on natural text as well as on repeated random tokens; these
probes give the same layouts on text. The corpus is a file, a folder (its ``*.txt`` files, sorted), a glob, or
``builtin`` (``plugins/corpus/kjv.txt.gz``, the King James Bible; see its LICENSE). Text is tokenized with the
model's tokenizer, or as bytes for a byte-level model (a ``defcheck:`` block with ``tokenizer: bytes``). Draws
are seeded by the run's seed and the probe's parameters, so a run is reproducible.
"""

from __future__ import annotations

import glob
import gzip
import io
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from defcheck_plugins.probes import _draw_key, _Params, _shortened, _use_bos, _with_bos, fitted_length
from pydantic import Field, field_validator

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import (
    DefcheckError,
    NotApplicable,
    Probe,
    ProbeBatch,
    ProbeRequest,
    display_path,
    hookimpl,
    probe_generator,
    read_regular_file,
)

BUILTIN = "builtin"
CORPUS_PACKAGE = "defcheck_plugins.corpus"
BUILTIN_FILE = "kjv.txt.gz"
MAX_CORPUS_BYTES = 64 * 1024 * 1024


class TextParams(_Params):
    n: int = Field(32, ge=1, le=100_000, description="Sequences.")
    length: int = Field(64, ge=2, description="Tokens per sequence (after BOS).")
    corpus: str = Field(BUILTIN, description="A text file, a folder of .txt files, a glob, or 'builtin'.")
    bos: bool | None = Field(None, description="Start with BOS; default: when the model has a BOS token.")


class RepeatedTextParams(_Params):
    n: int = Field(32, ge=1, le=100_000, description="Sequences per segment length.")
    length: int | list[int] = Field(32, description="Tokens L in the segment; a list for several lengths.")
    repeats: int = Field(2, ge=2, le=16, description="How many times the segment appears.")
    corpus: str = Field(BUILTIN, description="A text file, a folder of .txt files, a glob, or 'builtin'.")
    bos: bool | None = Field(None, description="Start with BOS; default: when the model has a BOS token.")

    @field_validator("length")
    @classmethod
    def _positive(cls, value: int | list[int]) -> int | list[int]:
        lengths = value if isinstance(value, list) else [value]
        if not lengths or any(length < 1 for length in lengths):
            raise ValueError("length must be an integer >= 1 or a non-empty list of them")
        return sorted(set(lengths)) if isinstance(value, list) else value


# -- the corpus --------------------------------------------------------------------------------------------


def corpus_files(corpus: str, request: ProbeRequest | None = None) -> list[Path]:
    """The files a ``corpus`` parameter names, sorted; a DefcheckError when it names none. Relative to the concept
    file that asks for it and inside the project (``request.path``; without a request: the working directory)."""
    if corpus == BUILTIN:
        with resources.as_file(resources.files(CORPUS_PACKAGE).joinpath(BUILTIN_FILE)) as path:
            return [Path(path)]
    path = request.path(corpus, "text corpus") if request is not None else Path(corpus).expanduser()
    if path.is_dir():
        files = sorted(item for item in path.rglob("*.txt") if item.is_file())
        if not files:
            raise DefcheckError(f"text corpus: the folder {corpus} holds no .txt files")
    elif path.exists():
        files = [path]  # a FIFO or a device too: read_regular_file says what it is
    elif any(char in corpus for char in "*?["):
        files = sorted(Path(item) for item in glob.glob(str(path), recursive=True) if Path(item).is_file())
        if not files:
            raise DefcheckError(f"text corpus: the pattern {corpus} matches no file")
    else:
        raise DefcheckError(f"text corpus: {corpus} does not exist (give a file, a folder, a glob or 'builtin')")
    if request is not None:  # a link in a folder, or a glob, may lead out of the project
        for item in files:
            request.inside(item, "text corpus")
    return files


def corpus_text(corpus: str, request: ProbeRequest | None = None) -> str:
    """The corpus's text, its files joined by newlines (gzip files read decompressed)."""
    return _corpus_text(corpus, tuple(corpus_files(corpus, request)))


@lru_cache(maxsize=4)
def _corpus_text(corpus: str, files: tuple[Path, ...]) -> str:
    parts = []
    size = 0
    for path in files:
        room = MAX_CORPUS_BYTES - size
        data = read_regular_file(path, room, "text corpus: the file")  # not a FIFO, not /dev/zero
        if path.suffix == ".gz":
            try:  # at most ``room`` bytes decompressed: a small gzip file may hold gigabytes
                data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(room + 1)
            except (OSError, EOFError) as error:
                raise DefcheckError(f"text corpus: cannot read {display_path(path)}: {error}") from None
        size += len(data)
        if size > MAX_CORPUS_BYTES:
            raise DefcheckError(f"text corpus: {corpus} holds more than {MAX_CORPUS_BYTES // 2**20} MB of text")
        parts.append(data.decode("utf-8", errors="replace"))
    text = "\n".join(parts)
    if not text.strip():
        raise DefcheckError(f"text corpus: {corpus} is empty")
    return text


def byte_level(model: Any) -> bool:
    """Whether the model reads bytes (its loader saw ``tokenizer: bytes`` in the config's ``defcheck:`` block)."""
    info = getattr(model, "info", None) or {}
    return info.get("tokenizer") == "bytes"


def corpus_ids(request: ProbeRequest, corpus: str) -> torch.Tensor:
    """The corpus as the model's token ids: bytes for a byte-level model, else the model's tokenizer."""
    text = corpus_text(corpus, request)
    if byte_level(request.model):
        ids = torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()
    elif request.tokenizer is not None:
        ids = torch.tensor(_encode(request.tokenizer, text), dtype=torch.long)
    else:  # not the user's mistake: a model without a tokenizer cannot be asked about text
        raise NotApplicable(
            "text probes need a way to turn text into the model's tokens: the model has no tokenizer (a Hugging Face "
            "folder brings one) and is not byte-level (`tokenizer: bytes` in its config's defcheck: block)"
        )
    if ids.numel() == 0:  # a tokenizer of another kind of input (numbers, say): this model does not read text
        raise NotApplicable(f"the model's tokenizer turns the text of {corpus} into no tokens: it does not read text")
    space = request.vocabulary()
    if int(ids.max()) >= space.d_vocab:
        raise DefcheckError(
            f"the tokenized corpus has id {int(ids.max())}, outside the vocabulary 0..{space.d_vocab - 1}"
        )
    return ids


def _encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (a Hugging Face tokenizer, or anything with ``encode``)."""
    try:
        return list(tokenizer.encode(text, add_special_tokens=False))
    except TypeError:
        return list(tokenizer.encode(text))


def _starts(ids: torch.Tensor, n: int, span: int, generator: torch.Generator, what: str) -> torch.Tensor:
    """``n`` seeded start offsets of windows of ``span`` tokens in ``ids``."""
    room = ids.numel() - span
    if room < 1:
        raise DefcheckError(f"{what}: the corpus has {ids.numel()} tokens, too few for sequences of {span}")
    return torch.randint(0, room + 1, (n,), generator=generator)


# -- the probes --------------------------------------------------------------------------------------------


def build_text(request: ProbeRequest) -> ProbeBatch:
    """``n`` windows of ``length`` consecutive corpus tokens, at seeded random offsets."""
    params: TextParams = request.params
    bos = _use_bos(request.vocabulary(), params.bos)
    how = "with BOS" if bos else ""
    length = fitted_length(request, "text", params.length, 1, int(bos), 2, how)
    ids = corpus_ids(request, params.corpus)
    generator = probe_generator(request.seed, "text", _draw_key(params))
    starts = _starts(ids, params.n, length, generator, "text")
    tokens = ids[starts[:, None] + torch.arange(length)[None, :]]
    note = _shortened(request, "text", params.length, length, int(bos), how)
    return ProbeBatch(
        "text", {}, _with_bos(tokens, request.vocabulary(), bos), bos=bos, info={"offset": starts}, note=note
    )


def build_repeated_text(request: ProbeRequest) -> ProbeBatch:
    """``[BOS] + text + S * repeats``: a corpus segment S of L tokens repeated, preceded by the text that comes
    before it in the corpus, so that every sequence has one length. The layout of ``repeated_random_tokens``
    (``info['length']``, ``info['start']``), so the same checkers read it."""
    params: RepeatedTextParams = request.params
    asked = params.length if isinstance(params.length, list) else [params.length]
    bos = _use_bos(request.vocabulary(), params.bos)
    how = f"{params.repeats} repeats" + (" and BOS" if bos else "")
    longest = fitted_length(request, "repeated_text", max(asked), params.repeats, int(bos), 1, how)
    lengths = sorted({min(length, longest) for length in asked})
    note = None
    if longest < max(asked):
        needed = max(asked) * params.repeats + int(bos)
        note = (
            f"shortened: repeated_text length {max(asked)} needs {needed} tokens ({how}); the model's context is "
            f"{request.n_ctx}, so length {longest} was used for every length above it"
        )
    total = max(lengths) * params.repeats
    ids = corpus_ids(request, params.corpus)
    generator = probe_generator(request.seed, "repeated_text", _draw_key(params))
    rows, row_lengths = [], []
    for length in lengths:
        lead = total - length * params.repeats  # text before the segment, so shorter segments pad to one length
        starts = _starts(ids, params.n, lead + length, generator, "repeated_text")
        window = ids[starts[:, None] + torch.arange(lead + length)[None, :]]
        segment = window[:, lead:]
        rows.append(torch.cat([window[:, :lead], segment.repeat(1, params.repeats)], dim=1))
        row_lengths += [length] * params.n
    tokens = _with_bos(torch.cat(rows), request.vocabulary(), bos)
    return ProbeBatch(
        "repeated_text",
        {},
        tokens.long(),
        bos=bos,
        info={"length": torch.tensor(row_lengths), "start": tokens.shape[1] - total},
        note=note,
    )


@hookimpl
def defcheck_probes() -> list[Probe]:
    return [
        Probe(
            "text",
            build_text,
            TextParams,
            "Windows of real text (a corpus file, folder, glob or the built-in)",
            fit="shorten",
            reads_files=True,
        ),
        Probe(
            "repeated_text",
            build_repeated_text,
            RepeatedTextParams,
            "A segment of real text repeated: [text][S][S] (Olsson et al.'s repeated natural text)",
            fit="shorten",
            reads_files=True,
        ),
    ]
