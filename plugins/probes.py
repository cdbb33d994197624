"""Built-in probes: repeated random tokens, random tokens, and a user's token file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import DefcheckError, Probe, ProbeBatch, ProbeRequest, TokenSpace, hookimpl, probe_generator


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    path: str = Field(description="A text file (needs the model's tokenizer) or whitespace-separated token ids.")
    length: int = Field(64, ge=2, description="Tokens per sequence; the file is cut into chunks of this size.")
    n: int | None = Field(None, ge=1, description="At most this many sequences.")
    bos: bool | None = None


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


def _check_fits(total: int, request: ProbeRequest) -> None:
    if total > request.n_ctx:
        raise DefcheckError(f"the probe needs {total} positions but the model's context is {request.n_ctx}")


def build_repeated(request: ProbeRequest) -> ProbeBatch:
    """``[BOS] + noise + R * repeats`` where R is a random block of length L; sequences padded to one length
    with random noise in front so several L share a batch. ``info['length']`` gives L per sequence."""
    params: RepeatedParams = request.params
    space = request.vocabulary()
    ids = space.usable_ids()
    if ids.numel() < 2:
        raise DefcheckError("the model has fewer than 2 usable token ids")
    generator = probe_generator(request.seed, "repeated_random_tokens", params.model_dump(mode="json"))
    lengths = params.length if isinstance(params.length, list) else [params.length]
    bos = _use_bos(space, params.bos)
    total = max(lengths) * params.repeats
    _check_fits(total + int(bos), request)
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
    )


def build_random(request: ProbeRequest) -> ProbeBatch:
    """Uniformly random usable token ids."""
    params: RandomParams = request.params
    space = request.vocabulary()
    ids = space.usable_ids()
    bos = _use_bos(space, params.bos)
    _check_fits(params.length + int(bos), request)
    generator = probe_generator(request.seed, "random_tokens", params.model_dump(mode="json"))
    tokens = ids[torch.randint(0, ids.numel(), (params.n, params.length), generator=generator)]
    return ProbeBatch("random_tokens", {}, _with_bos(tokens, space, bos).long(), bos=bos)


def build_file(request: ProbeRequest) -> ProbeBatch:
    """A user's text or token ids from a local file, cut into sequences of ``length`` tokens."""
    params: FileParams = request.params
    space = request.vocabulary()
    path = Path(params.path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefcheckError(f"token_file: cannot read {path}: {error.strerror or error}") from error
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
    _check_fits(params.length + int(bos), request)
    count = ids.numel() // params.length
    if params.n is not None:
        count = min(count, params.n)
    if count == 0:
        raise DefcheckError(f"token_file: {path} has fewer than {params.length} tokens")
    tokens = ids[: count * params.length].reshape(count, params.length)
    return ProbeBatch("token_file", {}, _with_bos(tokens, space, bos).long(), bos=bos)


@hookimpl
def defcheck_probes() -> list[Probe]:
    return [
        Probe("repeated_random_tokens", build_repeated, RepeatedParams, "Random blocks repeated: [A][B]...[A][B]"),
        Probe("random_tokens", build_random, RandomParams, "Uniformly random tokens"),
        Probe("token_file", build_file, FileParams, "A user's text or token ids from a local file"),
    ]
