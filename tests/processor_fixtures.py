"""Real HF processors for the multimodal families issue 12 verifies end to end, without weights.

A processor needs two halves: the processor-side files (``preprocessor_config.json``, ``processor_config.json``,
``video_preprocessor_config.json``, ``chat_template.json``/``.jinja``, and a ``tokenizer_config.json`` where the
model's added tokens differ from its text model's), which are small and shipped in
``tests/fixtures/processors/<folder>/``, and the tokenizer, which is big and not shipped: the tokenizer fixture
of the same vocabulary from ``../shared/fixtures/models`` (``tests/fixtures_locate.py``). :func:`processor_dir`
assembles both into one directory at test time, the way the real model repo lays them out: its
``tokenizer_config.json`` carries the processor's chat template (the real VL repos have the same template in both
places) and the special tokens the processor expands where the borrowed tokenizer lacks them.

Why borrowed tokenizers are enough: the VL models reuse a text model's vocabulary (Qwen2-VL/2.5-VL, InternVL3 and
Qwen2-Audio: Qwen2's 151,643 BPE tokens; Qwen3-VL: Qwen3's; LLaVA-1.5: Llama-2's ``tokenizer.model``; LLaVA-NeXT:
Mistral v0.2's; Gemma-3 4b: Gemma-3 1b's; GLM-4.1V: GLM-4's tiktoken vocabulary, converted here), and each
:class:`Family` lists the media-token ids of the real model, which the test checks. ``tests/fixtures/processors/
MANIFEST.md`` gives every file's source, kind (verbatim / secondary copy / borrowed / reconstructed) and licence;
:data:`UNAVAILABLE` the families that cannot be assembled offline and why (MiniCPM-V: remote code with no
faithful public copy of the 2.6 set).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fixtures_locate import locate

PROCESSORS = Path(__file__).resolve().parent / "fixtures" / "processors"

#: fixture names (the Hub repo, ``/`` -> ``--``, as the tokenizer fixtures are named)
QWEN2_5_VL = "Qwen--Qwen2.5-VL-7B-Instruct"
QWEN2_VL = "Qwen--Qwen2-VL-7B-Instruct"
GEMMA3 = "google--gemma-3-4b-it"
LLAVA_NEXT = "llava-hf--llava-v1.6-mistral-7b-hf"
LLAVA = "llava-hf--llava-1.5-7b-hf"
QWEN3_VL = "Qwen--Qwen3-VL-8B-Instruct"
INTERNVL = "OpenGVLab--InternVL3-1B-hf"
GLM4V = "zai-org--GLM-4.1V-9B-Thinking"
QWEN2_AUDIO = "Qwen--Qwen2-Audio-7B-Instruct"

#: GLM-4's pre-tokenizer regex (``tokenization_chatglm.py`` of the glm-4-9b-chat fixture)
_GLM4_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

#: files of the tokenizer fixture that go into the assembled directory (chat templates and config.json of the
#: text model do not: the processor brings its own)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.json", "merges.txt", "added_tokens.json")


@dataclass(frozen=True)
class Family:
    """One multimodal fixture: what LF calls it, whose tokenizer it borrows, what it must load as.

    ``image_token``/``video_token``/``audio_token``: the placeholder the chat template emits once per part and
    the processor expands (``None``: the family takes no such media); ``expanded``: placeholder -> the token
    repeated in the expansion where it is another one (Gemma-3: ``<start_of_image>`` -> ``<image_soft_token>``).
    ``ids``: the real model's id of each media token (checked: a borrowed tokenizer must give the same ids).
    ``added_tokens``: (id, token) special tokens the
    real model's tokenizer has and the borrowed fixture lacks, added at assembly (reconstructed; ``ids`` checks
    they land on the real ids).
    ``tokenizer_config``: further keys of the real model's tokenizer_config.json the processor reads.
    ``tiktoken_pattern``: the fixture's tokenizer is a tiktoken file (GLM-4's ``tokenizer.model``) and the model
    ships its conversion (``tokenizer.json``): it is converted here with this pre-tokenizer regex (:func:`_tiktoken_json`).
    ``replace_added_tokens``: the model shares the fixture's BPE vocabulary but not its added tokens (Qwen2-Audio:
    ``<|AUDIO|>`` is 151646 where Qwen2.5 has ``<|object_ref_start|>``): the assembled ``tokenizer.json`` gets
    exactly these added tokens instead of the fixture's.
    """

    name: str
    lf_template: str
    tokenizer: str
    processor_class: str
    image_token: Optional[str] = None
    video_token: Optional[str] = None
    audio_token: Optional[str] = None
    expanded: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    added_tokens: tuple[tuple[int, str], ...] = ()
    tokenizer_config: dict[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    tiktoken_pattern: Optional[str] = None
    replace_added_tokens: tuple[tuple[int, str], ...] = ()


FAMILIES: dict[str, Family] = {
    QWEN2_5_VL: Family(
        QWEN2_5_VL,
        lf_template="qwen2_vl",
        tokenizer="Qwen--Qwen2.5-1.5B-Instruct",
        processor_class="Qwen2_5_VLProcessor",
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
        ids={"<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|video_pad|>": 151656},
    ),
    QWEN2_VL: Family(
        QWEN2_VL,
        lf_template="qwen2_vl",
        tokenizer="Qwen--Qwen2.5-1.5B-Instruct",
        processor_class="Qwen2VLProcessor",
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
        ids={"<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|video_pad|>": 151656},
    ),
    GEMMA3: Family(
        GEMMA3,
        lf_template="gemma3",
        tokenizer="google--gemma-3-1b-it",
        processor_class="Gemma3Processor",
        image_token="<start_of_image>",
        expanded={"<start_of_image>": "<image_soft_token>"},
        ids={"<start_of_image>": 255999, "<end_of_image>": 256000, "<image_soft_token>": 262144},
    ),
    LLAVA_NEXT: Family(
        LLAVA_NEXT,
        lf_template="llava_next_mistral",
        tokenizer="mistralai--Mistral-7B-Instruct-v0.2",
        processor_class="LlavaNextProcessor",
        image_token="<image>",
        ids={"<image>": 32000, "<pad>": 32001},
    ),
    LLAVA: Family(
        LLAVA,
        lf_template="llava",
        # Phi-3-mini's tokenizer.model is Llama-2's byte for byte (sha256 9e556afd...), Vicuna-7B v1.5's vocabulary
        tokenizer="microsoft--Phi-3-mini-4k-instruct",
        processor_class="LlavaProcessor",
        image_token="<image>",
        ids={"<image>": 32000, "<pad>": 32001},
    ),
    QWEN3_VL: Family(
        QWEN3_VL,
        lf_template="qwen3_vl_nothink",
        tokenizer="Qwen--Qwen3-4B",
        processor_class="Qwen3VLProcessor",
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
        ids={"<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|video_pad|>": 151656},
    ),
    INTERNVL: Family(
        INTERNVL,
        lf_template="intern_vl",
        # transformers' converter builds the -hf tokenizer from Qwen2.5-VL-7B-Instruct's (Qwen2.5's vocabulary and
        # added tokens up to 151664) and appends nine special tokens
        tokenizer="Qwen--Qwen2.5-1.5B-Instruct",
        processor_class="InternVLProcessor",
        image_token="<IMG_CONTEXT>",
        video_token="<video>",
        expanded={"<video>": "<IMG_CONTEXT>"},
        added_tokens=tuple(enumerate(("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>",
                                       "<box>", "</box>"), start=151665)),
        tokenizer_config={
            "extra_special_tokens": {"start_image_token": "<img>", "end_image_token": "</img>",
                                     "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
            "model_max_length": 8192,
        },
        ids={"<img>": 151665, "</img>": 151666, "<IMG_CONTEXT>": 151667},
    ),
    GLM4V: Family(
        GLM4V,
        lf_template="glm4v",
        tokenizer="THUDM--glm-4-9b-chat",  # GLM-4's 151,329-token vocabulary, converted to tokenizer.json
        processor_class="Glm4vProcessor",
        image_token="<|image|>",
        video_token="<|video|>",
        expanded={"<|video|>": "<|image|>"},  # a video becomes timestamped groups of <|image|> tokens
        tiktoken_pattern=_GLM4_PATTERN,
        ids={"[gMASK]": 151331, "<sop>": 151333, "<|user|>": 151336, "<|assistant|>": 151337,
             "<|begin_of_image|>": 151339, "<|end_of_image|>": 151340, "<|begin_of_video|>": 151341,
             "<|end_of_video|>": 151342, "<|image|>": 151343, "<|video|>": 151344},
    ),
    QWEN2_AUDIO: Family(
        QWEN2_AUDIO,
        lf_template="qwen2_audio",
        tokenizer="Qwen--Qwen2.5-1.5B-Instruct",  # Qwen2's 151,643-token BPE; the added tokens are replaced
        processor_class="Qwen2AudioProcessor",
        audio_token="<|AUDIO|>",
        replace_added_tokens=tuple(enumerate(("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>",
                                               "<|audio_bos|>", "<|audio_eos|>"), start=151643)),
        tokenizer_config={"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
                                                        "<|audio_eos|>"]},
        ids={"<|im_start|>": 151644, "<|im_end|>": 151645, "<|AUDIO|>": 151646, "<|audio_bos|>": 151647,
             "<|audio_eos|>": 151648},
    ),
}


#: families issue 12 names that have no fixture here, with the reason (for skips and reports)
UNAVAILABLE: dict[str, str] = {
    "openbmb--MiniCPM-V-2_6": (
        "MiniCPM-V's processor is remote code in the model repo (processing_minicpmv.py, image_processing_minicpmv.py, "
        "tokenization_minicpmv_fast.py; transformers 5.6 has no MiniCPM-V class) and no faithful public copy of the "
        "set LF's minicpm_v/minicpm_o models use (V-2.6, o-2.6, V-4, V-4.5) was found (searched 2026-12-06, see "
        "tests/fixtures/processors/MANIFEST.md): image_processing_minicpmv.py of o-2.6 only in two modified copies, "
        "processing_minicpmv.py of V-2.6 only with its import rewritten, tokenization_minicpmv_fast.py (the "
        "im_start_id/slice_start_id that LF's get_mm_inputs reads) and a 2.6 preprocessor_config.json nowhere. "
        "transformers 5.6 does run this remote code: the one verbatim mirror (openbmb/MiniCPM-V-2, version 2.0, not "
        "an LF model) loads with AutoProcessor(trust_remote_code=True) offline, but LF 0.9.5's MiniCPMVPlugin fails "
        "on it: AttributeError: 'MiniCPMVImageProcessor' object has no attribute 'use_image_id' (mm_plugin.py "
        "process_messages; the 2.6 API is needed)"
    ),
    "openbmb--MiniCPM-V-4_6": (
        "LF's minicpm_v_4_6 (MiniCPMV4_6Plugin, 'with new transformers') calls MiniCPM-V-4.6's image processor "
        "(target_sizes, downsample_mode); transformers 5.6 has no MiniCPM-V-4.6 model or processor and no public copy "
        "of the model repo's processor files was found (GitHub projects named for 4.6 carry export/inference code)"
    ),
}


def for_template(lf_template: str) -> list[str]:
    """Fixture names whose model LF trains with ``lf_template`` (e.g. ``qwen2_vl`` -> Qwen2-VL and Qwen2.5-VL)."""
    return [name for name, family in FAMILIES.items() if family.lf_template == lf_template]


def chat_template(name: str) -> Optional[str]:
    """The processor's chat template: as shipped (``chat_template.jinja`` or ``chat_template.json``), else the
    tokenizer fixture's (families whose template is the text model's own, e.g. Gemma-3: not redistributed
    here, written into the assembled directory as ``chat_template.jinja``), else None."""
    folder = PROCESSORS / name
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "chat_template.json").is_file():
        return json.loads((folder / "chat_template.json").read_text(encoding="utf-8"))["chat_template"]
    config = json.loads((locate() / FAMILIES[name].tokenizer / "tokenizer_config.json").read_text(encoding="utf-8"))
    return config.get("chat_template")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _cache() -> Path:
    root = os.environ.get("LF_TEMPLATE_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lf-template-ext")
    return Path(root) / "fixtures" / "processors"


def _tiktoken_json(model: Path, pattern: str) -> Path:
    """``tokenizer.json`` converted from a tiktoken BPE file, as the model's own fast tokenizer file was made.

    transformers' ``TikTokenConverter`` turns the ranks into byte-level BPE merges with the given pre-tokenizer
    regex (about 6 s for GLM-4's 151,329 tokens), so the result is cached under
    ``${LF_TEMPLATE_EXT_CACHE:-~/.cache/lf-template-ext}/fixtures/processors``, keyed by the file's and the
    pattern's sha256. Special tokens come from ``tokenizer_config.json`` (``added_tokens_decoder``) at load time.
    """
    key = hashlib.sha256(model.read_bytes() + pattern.encode()).hexdigest()[:16]
    target = _cache() / f"tiktoken-{key}.tokenizer.json"
    if not target.is_file():
        from transformers.convert_slow_tokenizer import TikTokenConverter

        tokenizer = TikTokenConverter(vocab_file=str(model), pattern=pattern, additional_special_tokens=[]).converted()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only home: convert into the temp dir instead (again next run)
            target = Path(tempfile.gettempdir()) / target.name
        partial = target.with_suffix(f".{os.getpid()}.part")
        tokenizer.save(str(partial))
        os.replace(partial, target)
    return target


def processor_dir(name: str, dest: Path) -> Path:
    """Assemble fixture ``name`` into ``dest`` (created; files already there are replaced) and return it.

    Tokenizer files are symlinked from the tokenizer fixture (copied where symlinks fail); the processor files
    are copied; ``tokenizer_config.json`` is written: the shipped one (the model's own, where its added tokens
    differ from the text tokenizer's) or else the fixture's, with the processor's chat template, the family's
    ``added_tokens`` and ``tokenizer_config`` keys, as the real repo's file has them.
    """
    family = FAMILIES[name]
    src_tok = locate() / family.tokenizer
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in _TOKENIZER_FILES:
        if (src_tok / f).is_file() and f != "tokenizer_config.json":
            if (dest / f).exists() or (dest / f).is_symlink():
                (dest / f).unlink()
            if family.tiktoken_pattern and f == "tokenizer.model":
                _link_or_copy(_tiktoken_json(src_tok / f, family.tiktoken_pattern), dest / "tokenizer.json")
            elif family.replace_added_tokens and f == "tokenizer.json":
                data = json.loads((src_tok / f).read_text(encoding="utf-8"))
                data["added_tokens"] = [
                    {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                     "normalized": False, "special": True}
                    for i, t in family.replace_added_tokens
                ]
                (dest / f).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            else:
                _link_or_copy(src_tok / f, dest / f)
    for f in sorted((PROCESSORS / name).iterdir()):
        if f.is_file() and f.name != "tokenizer_config.json":
            shutil.copyfile(f, dest / f.name)
    # the base: the model's own tokenizer_config.json where it is shipped (a family whose text tokenizer's
    # config differs, e.g. LLaVA's <image>/<pad> added tokens), else the tokenizer fixture's
    base = PROCESSORS / name / "tokenizer_config.json"
    if not base.is_file():
        base = src_tok / "tokenizer_config.json"
    config = json.loads(base.read_text(encoding="utf-8"))
    template = chat_template(name)
    if template is not None:
        config["chat_template"] = template
        shipped = PROCESSORS / name
        if not (shipped / "chat_template.jinja").is_file() and not (shipped / "chat_template.json").is_file():
            (dest / "chat_template.jinja").write_text(template, encoding="utf-8")
    if family.replace_added_tokens:
        config["added_tokens_decoder"] = {}
    decoder = config.setdefault("added_tokens_decoder", {})
    for token_id, token in family.replace_added_tokens:
        decoder[str(token_id)] = {"content": token, "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False, "special": True}
    for token_id, token in family.added_tokens:
        if str(token_id) in decoder and decoder[str(token_id)]["content"] != token:
            raise ValueError(f"{name}: id {token_id} is {decoder[str(token_id)]['content']!r} in {base}, not {token!r}")
        decoder[str(token_id)] = {"content": token, "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False, "special": True}
    config.update(family.tokenizer_config)
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return dest


def load_processor(name: str, dest: Path) -> Any:
    """``AutoProcessor`` of fixture ``name``, assembled in ``dest``, loaded offline (``local_files_only``)."""
    from transformers import AutoProcessor

    family = FAMILIES[name]
    path = processor_dir(name, dest)
    return AutoProcessor.from_pretrained(str(path), local_files_only=True, trust_remote_code=family.trust_remote_code)
