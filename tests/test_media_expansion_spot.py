"""Opt-in spot check: the compiled template's media parts expanded by transformers' own processor vs LF's
expanded text (``process_messages`` with the same processor), for nine families (docs/multimodal.md).

The text check (tests/media_check.py, every multimodal template, CI) compares before expansion; this one runs
the expansion with processors built from transformers' classes (default settings, the check tokenizer), no
fixtures: a quick confirmation of the per-plugin table. The verdict *exact after expansion*, with the real
processor files and LF's media arguments, belongs to the expansion verifier. Run with
``LF_TEMPLATE_EXT_MEDIA_SPOT=1`` (about a minute).
"""

from __future__ import annotations

import os

import pytest

pytestmark = [
    pytest.mark.optin,
    pytest.mark.skipif(
        os.environ.get("LF_TEMPLATE_EXT_MEDIA_SPOT") != "1",
        reason="set LF_TEMPLATE_EXT_MEDIA_SPOT=1 for the media expansion spot check (about a minute)",
    ),
]


def _image(w: int, h: int):
    import numpy as np
    from PIL import Image

    return Image.fromarray((np.random.RandomState(w).rand(h, w, 3) * 255).astype("uint8"))


def _processor(name: str, tok):
    import transformers as T

    if name == "qwen2_vl":
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        return T.Qwen2VLProcessor(image_processor=T.Qwen2VLImageProcessor(), tokenizer=tok, video_processor=Qwen2VLVideoProcessor())
    if name == "qwen3_vl":
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

        return T.Qwen3VLProcessor(image_processor=T.Qwen2VLImageProcessor(patch_size=16), tokenizer=tok,
                                  video_processor=Qwen3VLVideoProcessor())
    clip = dict(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    llava = dict(patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1, image_token="<image>")
    if name == "llava":
        return T.LlavaProcessor(image_processor=T.CLIPImageProcessor(**clip), tokenizer=tok, **llava)
    if name == "llava_next":
        return T.LlavaNextProcessor(image_processor=T.LlavaNextImageProcessor(**clip), tokenizer=tok, **llava)
    if name == "pixtral":
        return T.PixtralProcessor(image_processor=T.PixtralImageProcessor(), tokenizer=tok, patch_size=16,
                                  spatial_merge_size=1, image_token="[IMG]", image_break_token="[IMG_BREAK]",
                                  image_end_token="[IMG_END]")
    if name == "qwen2_audio":
        return T.Qwen2AudioProcessor(feature_extractor=T.WhisperFeatureExtractor(), tokenizer=tok)
    if name == "mllama":
        return T.MllamaProcessor(image_processor=T.MllamaImageProcessor(), tokenizer=tok)
    if name == "gemma3":
        tok.boi_token, tok.eoi_token, tok.image_token = "<start_of_image>", "<end_of_image>", "<image_soft_token>"
        return T.Gemma3Processor(image_processor=T.Gemma3ImageProcessor(), tokenizer=tok, image_seq_length=256)
    raise KeyError(name)


@pytest.mark.parametrize(
    "name", ["qwen2_vl", "qwen3_vl", "llava", "llava_next", "pixtral", "qwen2_audio", "mllama", "gemma3"]
)
def test_processor_expansion_of_the_compiled_parts_is_lf_text(name):
    import numpy as np
    from media_check import conversation, media_tokenizer

    import lf_template_ext as lte
    from lf_template_ext.lf import compat
    from lf_template_ext.model.messages import to_lf
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.modeldir.tokenizer_copy import copy_tokenizer

    tok = copy_tokenizer(media_tokenizer(name))
    if name == "pixtral":
        tok.add_special_tokens({"additional_special_tokens": ["[IMG_BREAK]", "[IMG_END]"]}, replace_extra_special_tokens=False)
    processor = _processor(name, tok)
    prepared = compat.prepare(compat._template_module().TEMPLATES[name], tok, TemplateOptions())
    kind = "audio" if name == "qwen2_audio" else "image"
    messages = conversation((kind,))
    text = tok.apply_chat_template(messages, chat_template=lte.compile_jinja(name, tok), tokenize=False)
    lf = to_lf(messages)
    images = [_image(300 + 40 * i, 200) for i in range(len(lf.images))]
    audios = [np.random.RandomState(i).rand(16000).astype("float32") * 0.1 for i in range(len(lf.audios))]
    media = {"images": images} if images else {"audio": audios}
    # engines tokenize a rendered chat without special tokens: the template writes LF's BOS itself
    engine = processor(text=[text], add_special_tokens=False, **media)["input_ids"][0]
    msgs = prepared.template.mm_plugin.process_messages([dict(m) for m in lf.messages], images, [], audios, processor)
    pairs = prepared.template.encode_multiturn(prepared.tokenizer, msgs, lf.system or None, None)
    ids = [i for p, r in pairs for i in p + r]
    assert tok.decode(list(engine)) == tok.decode(ids)
