"""Media content parts through the compiled Jinja vs LF's ``process_messages`` (issue 12; docs/multimodal.md)."""

from __future__ import annotations

import jinja2
import pytest
from media_check import check_template

import lf_template_ext as lte
from lf_template_ext.model import media as mm
from lf_template_ext.model.messages import from_lf, lf_text_to_parts, parts_to_lf_text, to_lf


def test_qwen2_vl_parts_render_lf_text_and_ids():
    r = check_template("qwen2_vl")
    assert r.kinds == ("image", "video")
    assert "Look at <|vision_start|><|image_pad|><|vision_end|> (image) and " in r.engine_text
    assert r.same_text and r.same_ids, (r.engine_text, r.lf_text)
    assert r.counts_engine == r.counts_lf == {"image": 2, "video": 1}


def test_parts_and_tags_map_both_ways():
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": "b"},
             {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, {"type": "video"}]
    text, media = parts_to_lf_text(parts)
    assert text == "a<image>b<audio><video>" and [k for k, _ in media] == ["image", "audio", "video"]
    assert lf_text_to_parts(text) == [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"},
                                      {"type": "audio"}, {"type": "video"}]
    conv = to_lf([{"role": "user", "content": parts}, {"role": "assistant", "content": "x"}])
    assert conv.messages[0]["content"] == text and len(conv.images) == len(conv.audios) == len(conv.videos) == 1
    back, _ = from_lf(conv.messages, media_parts=True)
    assert back[0]["content"] == lf_text_to_parts(text) and back[1] == {"role": "assistant", "content": "x"}
    assert from_lf(conv.messages)[0][0]["content"] == text  # without media_parts the text is passed as it is


def test_a_kind_without_a_placeholder_is_refused_naming_template_and_kind(qwen25):
    from harness import harness_tokenizer

    tok, _ = harness_tokenizer("qwen2_vl")
    jinja = lte.compile_jinja("qwen2_vl", tok)
    with pytest.raises(jinja2.TemplateError, match=r"LF template 'qwen2_vl'.*audio content parts"):
        tok.apply_chat_template([{"role": "user", "content": [{"type": "audio"}]}], chat_template=jinja, tokenize=False)
    # a text-only template keeps refusing list content
    with pytest.raises(jinja2.TemplateError, match="content must be a string"):
        qwen25.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}],
                                   chat_template=lte.compile_jinja("qwen", qwen25), tokenize=False)


def test_string_content_is_unchanged_by_the_parts_path(qwen25):
    from harness import harness_tokenizer

    tok, _ = harness_tokenizer("qwen2_vl")
    jinja = lte.compile_jinja("qwen2_vl", tok)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    as_parts = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in msgs]
    assert tok.apply_chat_template(msgs, chat_template=jinja, tokenize=False) == tok.apply_chat_template(
        as_parts, chat_template=jinja, tokenize=False)
    assert mm.plan(None, "image").reason


@pytest.mark.parametrize(
    "name, placeholder",
    [
        ("intern_vl", "<IMG_CONTEXT>"),  # LF's `<img>`+context+`</img>` collapsed onto the processor's token
        ("ernie_vl", "Picture 2:<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"),  # numbered across turns
        ("qwen3_vl", "<|vision_start|><|video_pad|><|vision_end|>"),
        ("qwen2_omni", "<|audio_bos|><|AUDIO|><|audio_eos|>"),
        ("minicpm_o", "(<audio>./</audio>)"),
        ("llava", "<image>"),
    ],
)
def test_family_parts_render_lf_text_and_counts(name, placeholder):
    r = check_template(name)
    assert placeholder in r.engine_text
    assert r.ok, (r.engine_text, r.lf_text, r.counts_engine, r.counts_lf)


def test_the_check_can_fail():
    """LLaVA's placeholder where Qwen2-VL's belongs: the text and the counts differ."""
    from harness import harness_tokenizer

    wrong = lte.compile_jinja("llava", harness_tokenizer("llava")[0])
    r = check_template("qwen2_vl", kinds=("image",), jinja=wrong)
    assert not r.ok and not r.same_ids


def test_minicpm_video_and_paligemma_are_refused_with_the_reason():
    from harness import harness_tokenizer

    tok, _ = harness_tokenizer("minicpm_v")
    jinja = lte.compile_jinja("minicpm_v", tok)
    with pytest.raises(jinja2.TemplateError, match="minicpm_v.*video content parts.*per sampled frame"):
        tok.apply_chat_template([{"role": "user", "content": [{"type": "video"}]}], chat_template=jinja, tokenize=False)
    tok, _ = harness_tokenizer("paligemma")
    jinja = lte.compile_jinja("paligemma", tok)
    with pytest.raises(jinja2.TemplateError, match="paligemma.*process_token_ids"):
        tok.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}], chat_template=jinja, tokenize=False)


def test_the_plugin_table_in_docs_is_current():
    """docs/multimodal.md's per-plugin block is what scripts/multimodal_table.py writes (in this process: LF is
    already loaded)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import multimodal_table

    doc = multimodal_table.DOC.read_text(encoding="utf-8")
    assert multimodal_table.render(doc) == doc, "docs/multimodal.md is stale: run python scripts/multimodal_table.py"


def test_ollama_and_lmdeploy_files_say_media_is_not_theirs(tmp_path, qwen25):
    """Neither file has a place for media: the verdicts carry the reason with LF's placeholders (emit, repair,
    SERVING.md and the report show verdict caveats), the Modelfile says "Text only"; a text-only template has no
    such caveat, and the Jinja's caveat names what the template refuses."""
    from lf_template_ext.compiler import ollama
    from lf_template_ext.lf import compat
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.workflows.engines import ENGINES, EmitContext

    def ctx(name):
        snap = compat.snapshot(compat._template_module().TEMPLATES[name], qwen25, TemplateOptions())
        return EmitContext(snapshot=snap, model_dir=str(tmp_path), model_name="m", tokenizer=qwen25)

    vl = ctx("qwen2_vl")
    for engine in ("ollama", "lmdeploy"):
        v = ENGINES[engine].verdict(vl)
        media = [c for c in v.caveats if c.startswith("media parts:")]
        assert v.ok and len(media) == 1 and "<|vision_start|><|image_pad|><|vision_end|>` per image" in media[0], v
    text = ollama.modelfile(vl.snapshot.spec, vl.snapshot.facts, stop_words=["<|im_end|>"], cutoff_len=None,
                            jinja_may_take_over=False)
    assert "# Text only: media parts: Ollama's Modelfile cannot place LF's placeholders" in text
    assert not ENGINES["vllm"].verdict(vl).caveats
    plain = ctx("qwen")
    assert not any("media" in c for e in ("ollama", "lmdeploy", "vllm") for c in ENGINES[e].verdict(plain).caveats)
    pali = ENGINES["vllm"].verdict(ctx("paligemma"))
    assert pali.ok and "process_token_ids" in pali.caveats[0]


@pytest.mark.parametrize("name", ["qwen3_vl", "llava"])
def test_vllm_openai_format_renders_like_strings(name):
    """vLLM's "openai" content format (chosen for these templates) turns every content, the system's and the
    tool results' too, into a list of text parts (None: []): the probe corpus so converted renders exactly as
    with string contents (and as LF encodes them: the coverage table's text columns)."""
    from harness import harness_tokenizer

    from lf_template_ext.model.corpus import probe_corpus

    tok, _ = harness_tokenizer(name)
    jinja = lte.compile_jinja(name, tok)
    n = 0
    for conv in probe_corpus():
        msgs = conv["messages"]
        as_parts = [
            dict(m, content=[] if m.get("content") is None else [{"type": "text", "text": m["content"]}]) for m in msgs
        ]
        kw = {"tools": conv["tools"]} if conv.get("tools") else {}
        try:
            want = tok.apply_chat_template(msgs, chat_template=jinja, tokenize=False, **kw)
        except jinja2.TemplateError:
            continue  # what LF cannot encode is refused either way
        assert tok.apply_chat_template(as_parts, chat_template=jinja, tokenize=False, **kw) == want, conv["id"]
        n += 1
    assert n >= 10
    with pytest.raises(jinja2.TemplateError, match="system message can only hold text parts"):
        tok.apply_chat_template([{"role": "system", "content": [{"type": "image"}]}, {"role": "user", "content": "x"}],
                                chat_template=jinja, tokenize=False)
