"""Each processor fixture loads offline as its real processor class and expands one generated medium.

The expected placeholder counts are worked out here from each model's own arithmetic (comments), not read
back from the processor, so a wrong config (patch size, pixel bounds, tokens per image) fails the test. The
media are generated (PIL image, numpy video frames / audio samples), never downloaded.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
from PIL import Image
from processor_fixtures import (
    FAMILIES,
    GEMMA3,
    GLM4V,
    INTERNVL,
    LLAVA,
    LLAVA_NEXT,
    PROCESSORS,
    QWEN2_5_VL,
    QWEN2_AUDIO,
    QWEN2_VL,
    QWEN3_VL,
    UNAVAILABLE,
    chat_template,
    for_template,
    load_processor,
)

#: one worker loads each processor once for all the tests here (under `-n 2 --dist loadgroup`)
pytestmark = pytest.mark.xdist_group("processor_fixtures")


def _image(w: int, h: int) -> Image.Image:
    """A non-uniform RGB image (a gradient), so nothing can special-case a blank one."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8), "RGB")


def _video(frames: int, w: int, h: int) -> np.ndarray:
    return np.stack([np.asarray(_image(w, h)) // (i + 1) for i in range(frames)])


def _audio(seconds: float, rate: int = 16000) -> np.ndarray:
    """A 440 Hz tone at the models' 16 kHz (LF's ``audio_sampling_rate``)."""
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _metadata(frames: int, fps: float = 2.0):
    """What a decoder reports for generated frames (GLM-4V refuses to sample a video without it)."""
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(total_num_frames=frames, fps=fps, frames_indices=list(range(frames)))


#: name -> [(kind, medium, expected number of placeholder tokens after expansion[, processor kwargs])]
CASES = {
    # Qwen2-VL arithmetic: smart_resize rounds each side to a multiple of 28 (patch 14 x merge 2):
    # 100x80 -> 112x84 -> 8x6 patches -> 48/4 = 12 tokens; video 4 frames 56x56 -> t=4/2=2, 4x4 -> 2*16/4 = 8.
    QWEN2_5_VL: [("image", _image(100, 80), 12), ("video", _video(4, 56, 56), 8)],
    QWEN2_VL: [("image", _image(100, 80), 12), ("video", _video(4, 56, 56), 8)],
    # Gemma-3: every image is resized to 896x896 and becomes image_seq_length = 256 soft tokens (no pan & scan).
    GEMMA3: [("image", _image(100, 80), 256)],
    # LLaVA-NeXT anyres: 100x80 picks the 336x672 (h x w) pinpoint (least waste); base 24x24 = 576 (+1 CLS, -1
    # for "default" selection); the 24x48 grid unpadded to the image's 1.25 aspect: width 100*24/80 = 30 -> 24x30
    # = 720, plus 24 newline tokens: 576 + 720 + 24 = 1320.
    LLAVA_NEXT: [("image", _image(100, 80), 1320)],
    # LLaVA-1.5: resized and cropped to 336x336, 24x24 patches of 14 = 576 (+1 CLS, -1 for "default" selection).
    LLAVA: [("image", _image(100, 80), 576)],
    # Qwen3-VL: patch 16 x merge 2 = factor 32, min 65,536 pixels: 100x80 is scaled up by sqrt(65536/8000) and
    # ceiled to 288x256 -> 18x16 patches -> 288/4 = 72; video 4 frames 64x64: t=2, 4x4 -> 8 (two timestamped groups).
    QWEN3_VL: [("image", _image(100, 80), 72), ("video", _video(4, 64, 64), 8)],
    # InternVL (crop_to_patches, the processor's default): 100x80 (aspect 1.25) tiles best as 4x3 of 448 within
    # max_patches 12, plus a thumbnail = 13 tiles x 256 = 3328; a 448x448 image is one tile; a video is 256 per frame.
    INTERNVL: [("image", _image(100, 80), 3328), ("image", _image(448, 448), 256), ("video", _video(4, 64, 64), 1024)],
    # GLM-4.1V: Qwen2-VL's arithmetic (patch 14 x merge 2, min 12,544 pixels): 100x80 -> 112x84 -> 8x6 -> 12; a video
    # of 4 frames 56x56 at 2 fps -> 2 temporal groups x 2x2 = 8 <|image|> inside <|begin_of_video|>...
    GLM4V: [("image", _image(100, 80), 12), ("video", _video(4, 56, 56), 8, {"video_metadata": [_metadata(4)]})],
    # Qwen2-Audio: Whisper features at 100 frames per second -> 1 s = 100 frames; the encoder halves twice:
    # (100 - 1) // 2 + 1 = 50, (50 - 2) // 2 + 1 = 25 <|AUDIO|>.
    QWEN2_AUDIO: [("audio", _audio(1.0), 25, {"sampling_rate": 16000})],
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_processor(name, tmp_path_factory.mktemp(name.replace("--", "_")))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_fixture_loads_and_expands(name, loaded):
    family = FAMILIES[name]
    processor = loaded(name)
    assert type(processor).__name__ == family.processor_class
    tok = processor.tokenizer
    assert processor.chat_template == chat_template(name), "the processor must read the shipped chat template"
    assert {t: tok.convert_tokens_to_ids(t) for t in family.ids} == family.ids, "media token ids differ from the model's"
    for kind, medium, expected, *kwargs in CASES[name]:
        placeholder = {"image": family.image_token, "video": family.video_token, "audio": family.audio_token}[kind]
        pad = family.expanded.get(placeholder, placeholder)
        for special in (placeholder, pad):  # one id each, as in the real tokenizer, never split into text pieces
            assert tok.convert_ids_to_tokens(tok.encode(special, add_special_tokens=False)) == [special]
        token_id = tok.convert_tokens_to_ids(pad)
        messages = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": "What is this?"}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert text.count(placeholder) == 1, text
        media = {"image": "images", "video": "videos", "audio": "audio"}[kind]  # the processors' argument names
        out = processor(text=[text], **{media: [medium]}, **(kwargs[0] if kwargs else {}))
        assert out["input_ids"][0].count(token_id) == expected, (kind, out["input_ids"][0].count(token_id))


#: what LF's own mm_plugin makes of each family's first case, with LF's default media arguments (patch_processor).
#: Equal to the processor's count except InternVL: LF's ``crop_to_patches`` defaults to False (one 448 tile, 256),
#: while InternVLProcessor tiles by default (3328): a real training/serving difference the verifier must report.
LF_COUNTS = {QWEN2_5_VL: 12, QWEN2_VL: 12, GEMMA3: 256, LLAVA_NEXT: 1320, LLAVA: 576, QWEN3_VL: 72, INTERNVL: 256,
             GLM4V: 12, QWEN2_AUDIO: 25}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_lf_plugin_takes_the_fixture(name, loaded):
    """The fixture is usable as LF's reference: LF's template plugin expands one medium with it."""
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import ModelArguments
    from llamafactory.model.patcher import patch_processor

    family = FAMILIES[name]
    processor = copy.copy(loaded(name))  # LF's attributes on a copy: the shared processor stays as loaded
    patch_processor(processor, processor.tokenizer, ModelArguments(model_name_or_path=name))
    kind, medium, *_ = CASES[name][0]
    tag = {"image": "<image>", "video": "<video>", "audio": "<audio>"}[kind]
    messages = [{"role": "user", "content": tag + "What is this?"}, {"role": "assistant", "content": "A test."}]
    media = {"image": ([medium], [], []), "video": ([], [medium], []), "audio": ([], [], [medium])}[kind]
    out = TEMPLATES[family.lf_template].mm_plugin.process_messages(messages, *media, processor)
    placeholder = {"image": family.image_token, "video": family.video_token, "audio": family.audio_token}[kind]
    assert out[0]["content"].count(family.expanded.get(placeholder, placeholder)) == LF_COUNTS[name]


def test_manifest_lists_every_shipped_file_with_its_hash():
    """MANIFEST.md's provenance stays true: each shipped file has a row in its folder's section with its sha256[:16]."""
    manifest = (PROCESSORS / "MANIFEST.md").read_text(encoding="utf-8")
    missing = []
    for folder in sorted(p for p in PROCESSORS.iterdir() if p.is_dir()):
        section = manifest.split(f"### `{folder.name}`", 1)[-1].split("\n### ", 1)[0]
        assert folder.name in FAMILIES, f"{folder.name}: a fixture folder no Family names"
        for f in sorted(folder.iterdir()):
            sha = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            rows = [line for line in section.splitlines() if line.startswith(f"| `{f.name}` |")]
            if not rows or f"`{sha}`" not in rows[0]:
                missing.append(f"{folder.name}/{f.name} ({sha})")
    assert not missing, "MANIFEST.md lacks or has a stale row for: " + ", ".join(missing)


def test_every_family_has_cases():
    assert set(CASES) == set(FAMILIES) == set(LF_COUNTS)
    assert for_template("qwen2_vl") == [QWEN2_5_VL, QWEN2_VL]
    assert not set(UNAVAILABLE) & set(FAMILIES)
