"""Built-in probes: repeated random tokens, random tokens, and a user's token file.

All three declare the fit policy ``shorten`` (:class:`~defcheck.plugin.Probe`): on a model whose context
(``n_ctx``) is shorter than a probe's sequences, ``random_tokens`` and ``token_file`` use the longest sequence
length that fits, and ``repeated_random_tokens`` replaces every block length that does not fit by the longest
that does (several lengths may become one, so the probe then has fewer sequences). The batch's ``note`` says
what was shortened and why, and the report shows it with every criterion on the probe. A criterion's
``fit: not_applicable`` asks for the other policy: its criteria are then not applicable, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import (
    DefcheckError,
    NotApplicable,
    Probe,
    ProbeBatch,
    ProbeRequest,
    TokenSpace,
    display_path,
    hookimpl,
    probe_generator,
    read_regular_file,
)

MAX_TOKEN_FILE_BYTES = 64 * 2**20


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fit: Literal["shorten", "not_applicable"] | None = Field(
        None,
        description="When the sequences are longer than the model's context: 'shorten' (the longest length that "
        "fits, said in the report) or 'not_applicable'; default: the probe's declared policy (shorten).",
    )

    @model_serializer(mode="wrap")
    def _without_default_fit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The parameters, leaving ``fit`` out while it is unset: a probe's key (and so its report entry and its
        random draws) stays what it was before the fit policy existed."""
        data: dict[str, Any] = handler(self)
        if data.get("fit") is None:
            data.pop("fit", None)
        return data


def _draw_key(params: _Params) -> dict[str, Any]:
    """The parameters that seed a probe's random draws: not ``fit``, which only decides what happens when the
    sequences do not fit (the same criterion draws the same tokens whatever its policy)."""
    data = params.model_dump(mode="json")
    data.pop("fit", None)
    return data


class RepeatedParams(_Params):
    n: int = Field(64, ge=1, le=100_000, description="Sequences per repeat length.")
    length: int | list[int] = Field(32, description="Length L of the random block; a list for several lengths.")
    repeats: int = Field(2, ge=2, le=16, description="How many times the block appears.")
    bos: bool | None = Field(None, description="Start with BOS; default: when the model has a BOS token.")

    @field_validator("length")
    @classmethod
    def _positive(cls, value: int | list[int]) -> int | list[int]:
        lengths = value if isinstance(value, list) else [value]
        if not lengths or any(length < 1 for length in lengths):
            raise ValueError("length must be an integer >= 1 or a non-empty list of them")
        return sorted(set(lengths)) if isinstance(value, list) else value


class RandomParams(_Params):
    n: int = Field(64, ge=1, le=100_000)
    length: int = Field(32, ge=2)
    bos: bool | None = None


class FileParams(_Params):
    path: str = Field(
        description="A text file (needs the model's tokenizer) or whitespace-separated token ids, relative to the "
        "concept file; inside the project unless --allow-outside-files."
    )
    length: int = Field(64, ge=2, description="Tokens per sequence; the file is cut into chunks of this size.")
    n: int | None = Field(None, ge=1, description="At most this many sequences.")
    bos: bool | None = None


def _tokens(count: int) -> str:
    return f"{count} token" + ("" if count == 1 else "s")


def fitted_length(
    request: ProbeRequest, name: str, length: int, per_length: int, extra: int, shortest: int, how: str = ""
) -> int:
    """The longest length ``<= length`` whose sequences (``per_length * length + extra`` tokens) fit the model's
    context, under the probe's fit policy: ``length`` itself when it fits; else, with ``shorten``, the longest
    that fits (at least ``shortest``); otherwise :class:`NotApplicable` with the reason. ``how`` says what the
    token count is made of ("2 repeats and BOS")."""
    needed = per_length * length + extra
    if not request.n_ctx or needed <= request.n_ctx:
        return length
    longest = (request.n_ctx - extra) // per_length
    made_of = f" ({how})" if how else ""
    reason = f"length {length} needs {_tokens(needed)}{made_of}; the model's context is {request.n_ctx}"
    if longest < shortest:
        raise NotApplicable(f"{name}: {reason}, too short for even length {shortest}")
    if request.fit_policy() == "not_applicable":
        raise NotApplicable(f"{name}: {reason} (fit: not_applicable; fit: shorten would use length {longest})")
    return longest


def _shortened(request: ProbeRequest, name: str, length: int, used: int, extra: int, how: str = "") -> str | None:
    """The note of a probe shortened from ``length`` to ``used`` (``None`` when it was not)."""
    if used >= length:
        return None
    made_of = f" ({how})" if how else ""
    return (
        f"shortened: {name} length {length} needs {_tokens(length + extra)}{made_of}; the model's context is "
        f"{request.n_ctx}, so length {used} was used"
    )


def _use_bos(space: TokenSpace, wanted: bool | None) -> bool:
    if wanted and space.bos_token_id is None:
        raise DefcheckError("bos: true, but the model has no BOS token id (give --bos-token-id)")
    return space.bos_token_id is not None if wanted is None else wanted


def _random_blocks(ids: torch.Tensor, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` blocks of ``length`` distinct ids (ids may repeat across blocks; within one only if too few)."""
    if length <= ids.numel():
        order = torch.rand(n, ids.numel(), generator=generator).argsort(dim=1)[:, :length]
    else:
        order = torch.randint(0, ids.numel(), (n, length), generator=generator)
    return ids[order]


def _with_bos(tokens: torch.Tensor, space: TokenSpace, bos: bool) -> torch.Tensor:
    if not bos:
        return tokens
    assert space.bos_token_id is not None  # _use_bos allows bos only with a BOS id
    return torch.cat([torch.full((tokens.shape[0], 1), space.bos_token_id, dtype=tokens.dtype), tokens], dim=1)


def build_repeated(request: ProbeRequest) -> ProbeBatch:
    """``[BOS] + noise + R * repeats`` where R is a random block of length L; sequences padded to one length
    with random noise in front so several L share a batch. ``info['length']`` gives L per sequence."""
    params: RepeatedParams = request.params
    space = request.vocabulary()
    ids = space.usable_ids()
    if ids.numel() < 2:
        raise DefcheckError("the model has fewer than 2 usable token ids")
    generator = probe_generator(request.seed, "repeated_random_tokens", _draw_key(params))
    asked = params.length if isinstance(params.length, list) else [params.length]
    bos = _use_bos(space, params.bos)
    how = f"{params.repeats} repeats" + (" and BOS" if bos else "")
    longest = fitted_length(request, "repeated_random_tokens", max(asked), params.repeats, int(bos), 1, how)
    lengths = sorted({min(length, longest) for length in asked})
    note = None
    if longest < max(asked):
        cut = [length for length in asked if length > longest]
        instead = f" instead of {_listing(cut)}" if len(cut) > 1 else ""
        if len(lengths) < len(asked):  # lengths merged into one: fewer sequences, said rather than hidden
            instead += f" ({params.n * len(lengths)} sequences instead of {params.n * len(asked)})"
        needed = max(asked) * params.repeats + int(bos)
        note = (
            f"shortened: repeated_random_tokens length {max(asked)} needs {_tokens(needed)} ({how}); the model's "
            f"context is {request.n_ctx}, so length {longest} was used{instead}"
        )
    total = max(lengths) * params.repeats
    rows, row_lengths = [], []
    for length in lengths:
        block = _random_blocks(ids, params.n, length, generator)
        noise = ids[torch.randint(0, ids.numel(), (params.n, total - length * params.repeats), generator=generator)]
        rows.append(torch.cat([noise, block.repeat(1, params.repeats)], dim=1))
        row_lengths += [length] * params.n
    tokens = _with_bos(torch.cat(rows), space, bos)
    return ProbeBatch(
        "repeated_random_tokens",
        {},
        tokens.long(),
        bos=bos,
        info={"length": torch.tensor(row_lengths), "start": tokens.shape[1] - total},
        note=note,
    )


def _listing(values: list[int]) -> str:
    """``13 and 21``, ``8, 13 and 21``."""
    text = [str(value) for value in values]
    return text[0] if len(text) == 1 else f"{', '.join(text[:-1])} and {text[-1]}"


def build_random(request: ProbeRequest) -> ProbeBatch:
    """Uniformly random usable token ids."""
    params: RandomParams = request.params
    space = request.vocabulary()
    ids = space.usable_ids()
    bos = _use_bos(space, params.bos)
    how = "with BOS" if bos else ""
    length = fitted_length(request, "random_tokens", params.length, 1, int(bos), 2, how)
    generator = probe_generator(request.seed, "random_tokens", _draw_key(params))
    tokens = ids[torch.randint(0, ids.numel(), (params.n, length), generator=generator)]
    note = _shortened(request, "random_tokens", params.length, length, int(bos), how)
    return ProbeBatch("random_tokens", {}, _with_bos(tokens, space, bos).long(), bos=bos, note=note)


def build_file(request: ProbeRequest) -> ProbeBatch:
    """A user's text or token ids from a local file, cut into sequences of ``length`` tokens."""
    params: FileParams = request.params
    space = request.vocabulary()
    path = request.path(params.path, "token_file")  # relative to the concept file; inside the project
    raw = read_regular_file(path, MAX_TOKEN_FILE_BYTES, "token_file: the file")  # not a FIFO or /dev/zero
    text = raw.decode("utf-8", errors="replace")
    path = Path(display_path(path))  # messages name it as the user would type it
    words = text.split()
    if words and all(word.lstrip("-").isdigit() for word in words):
        ids = torch.tensor([int(word) for word in words])
        bad = ids[(ids < 0) | (ids >= space.d_vocab)]
        if bad.numel():
            raise DefcheckError(
                f"token_file: {path} has id {bad[0].item()} outside the vocabulary 0..{space.d_vocab - 1}"
            )
    elif request.tokenizer is not None:
        ids = torch.tensor(request.tokenizer.encode(text))
    else:
        raise DefcheckError(f"token_file: {path} holds text but the model has no tokenizer; give token ids instead")
    bos = _use_bos(space, params.bos)
    how = "with BOS" if bos else ""
    length = fitted_length(request, "token_file", params.length, 1, int(bos), 2, how)
    count = ids.numel() // length
    if params.n is not None:
        count = min(count, params.n)
    if count == 0:
        raise DefcheckError(f"token_file: {path} has fewer than {length} tokens")
    tokens = ids[: count * length].reshape(count, length)
    note = _shortened(request, "token_file", params.length, length, int(bos), how)
    return ProbeBatch("token_file", {}, _with_bos(tokens, space, bos).long(), bos=bos, note=note)


@hookimpl
def defcheck_probes() -> list[Probe]:
    return [
        Probe(
            "repeated_random_tokens",
            build_repeated,
            RepeatedParams,
            "Random blocks repeated: [A][B]...[A][B]",
            fit="shorten",
        ),
        Probe("random_tokens", build_random, RandomParams, "Uniformly random tokens", fit="shorten"),
        Probe(
            "token_file",
            build_file,
            FileParams,
            "A user's text or token ids from a local file",
            fit="shorten",
            reads_files=True,
        ),
    ]
