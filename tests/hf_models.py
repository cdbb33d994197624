"""Tiny random-weight Hugging Face model folders (``transformers`` + ``save_pretrained``) for the ``hf`` loader's tests.

Each builder writes ``config.json``, the weights and (unless told not to) a tokenizer trained here in a few
milliseconds with the ``tokenizers`` library, into a folder, and returns it. Weights are seeded, so a folder is
the same model every time. Architectures: GPT-2 (learned positions, LayerNorm, tied or untied unembedding),
GPT-NeoX / Pythia (rotary, parallel attention and MLP), Llama (RMSNorm, rotary, SwiGLU, grouped-query
attention), BERT (``BertForMaskedLM``, and a ``BertModel`` saved without its masked-LM head).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

D_MODEL = 32
N_HEADS = 4
N_LAYERS = 2
N_CTX = 64
BPE_SIZE = 160  # the trained BPE's vocabulary (special tokens included)

# A corpus with enough repeated words for a BPE to learn merges; never read from the network.
TEXT = (
    "the cat sat on a mat while one two three four five six seven eight nine ten dogs ran "
    "over hills and rivers under bright stars monday tuesday wednesday thursday friday "
    "january february march april may june july august september october november december"
)


def _corpus() -> list[str]:
    """Deterministic lines of the words above, in a few orders."""
    words = TEXT.split()
    return [" ".join(words[i:] + words[:i]) for i in range(0, len(words), 3)]


def train_bpe(specials: list[str], size: int = BPE_SIZE) -> Any:
    """A small BPE (``tokenizers``) trained on :func:`_corpus`, with ``specials`` at ids 0, 1, ..."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=specials[0] if "<unk>" in specials[0] else None))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.BPEDecoder()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return tokenizer


def train_wordpiece(specials: list[str], size: int = BPE_SIZE) -> Any:
    """A small WordPiece (BERT-style) tokenizer trained on :func:`_corpus`, ``specials`` at ids 0, 1, ..."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tokenizer


def _save(model: Any, folder: Path, tokenizer: Any | None, safetensors: bool = True) -> Path:
    """Write ``model`` (and ``tokenizer``) into ``folder``; ``safetensors=False`` writes ``pytorch_model.bin``."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if not safetensors:  # the older format: a plain state dict in pytorch_model.bin (tensors only)
        weights = folder / "model.safetensors"
        from safetensors.torch import load_file

        torch.save(load_file(weights), folder / "pytorch_model.bin")
        weights.unlink()
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def _seeded(build: Callable[[], Any], seed: int) -> Any:
    """``build()`` under a fixed torch seed, in eval mode."""
    torch.manual_seed(seed)
    return build().eval()


def gpt2_folder(folder: Path, tied: bool = True, tokenizer: bool = True, seed: int = 0) -> Path:
    """GPT-2: learned positions, LayerNorm; ``<|endoftext|>`` is the last id (as in GPT-2), and BOS."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = train_bpe(["<unk>"])
    bpe.add_special_tokens(["<|endoftext|>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<unk>"
    )
    eot = fast.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=N_CTX,
        n_embd=D_MODEL,
        n_layer=N_LAYERS,
        n_head=N_HEADS,
        bos_token_id=eot,
        eos_token_id=eot,
        tie_word_embeddings=tied,
    )
    model = _seeded(lambda: GPT2LMHeadModel(config), seed)
    return _save(model, folder, fast if tokenizer else None)


def neox_folder(folder: Path, tokenizer: bool = True, seed: int = 1, safetensors: bool = False) -> Path:
    """GPT-NeoX / Pythia: rotary (partial), parallel attention and MLP, untied unembedding; the model's vocabulary
    is padded past the tokenizer's (as Pythia's 50304 against 50277). Saved as ``pytorch_model.bin`` by default."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    bpe = train_bpe(["<|endoftext|>", "<|padding|>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|padding|>"
    )
    config = GPTNeoXConfig(
        vocab_size=len(fast) + 8,
        hidden_size=D_MODEL,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        intermediate_size=4 * D_MODEL,
        max_position_embeddings=N_CTX,
        rotary_pct=0.5,
        use_parallel_residual=True,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    model = _seeded(lambda: GPTNeoXForCausalLM(config), seed)
    return _save(model, folder, fast if tokenizer else None, safetensors=safetensors)


def llama_folder(folder: Path, tokenizer: bool = True, seed: int = 2) -> Path:
    """Llama: RMSNorm, rotary, SwiGLU, grouped-query attention (4 query heads, 2 key/value heads); BOS ``<s>``."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = train_bpe(["<unk>", "<s>", "</s>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=D_MODEL,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        num_key_value_heads=2,
        intermediate_size=2 * D_MODEL,
        max_position_embeddings=N_CTX,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = _seeded(lambda: LlamaForCausalLM(config), seed)
    return _save(model, folder, fast if tokenizer else None)


def _bert_tokenizer() -> Any:
    """A BERT tokenizer (WordPiece): ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, ``[MASK]`` 4; no BOS."""
    from transformers import BertTokenizerFast

    wordpiece = train_wordpiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return BertTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _bert_config(vocab_size: int) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=D_MODEL,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        intermediate_size=2 * D_MODEL,
        max_position_embeddings=N_CTX,
    )


def bert_folder(folder: Path, tokenizer: bool = True, seed: int = 3) -> Path:
    """BERT with its masked-LM head (``BertForMaskedLM``): post-LN, bidirectional; BOS is ``[CLS]``."""
    from transformers import BertForMaskedLM

    fast = _bert_tokenizer()
    model = _seeded(lambda: BertForMaskedLM(_bert_config(len(fast))), seed)
    with torch.no_grad():  # LayerNorm weights away from 1, so a wrong norm would show in the scores
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 2.0)
    return _save(model, folder, fast if tokenizer else None)


def bert_encoder_folder(folder: Path, tokenizer: bool = True, seed: int = 4) -> Path:
    """A ``BertModel`` saved without the masked-LM head (as sentence encoders such as all-MiniLM-L6-v2 are)."""
    from transformers import BertModel

    fast = _bert_tokenizer()
    model = _seeded(lambda: BertModel(_bert_config(len(fast))), seed)
    return _save(model, folder, fast if tokenizer else None)


BUILDERS: dict[str, Callable[..., Path]] = {
    "gpt2": gpt2_folder,
    "gpt2-untied": lambda folder, **kw: gpt2_folder(folder, tied=False, **kw),
    "neox": neox_folder,
    "llama": llama_folder,
    "bert": bert_folder,
    "bert-encoder": bert_encoder_folder,
}
