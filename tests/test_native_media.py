"""``template: native`` with images through LF's real supervised preprocessing (issue 12, item 6).

A Qwen2.5-VL processor fixture (no weights), three samples with images generated here, LF's
``get_dataset`` with ``template: native``: every example's ids are the processor's ids for the model's own
chat template over content parts with LF's resized images (what a server computes when the client sends the
pixels training saw), labels sit on the assistant answers only, and LF's collator plugin is the model's.
Without a processor chat template native mode refuses, naming the dir and the fix.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from processor_fixtures import (
    FAMILIES,
    GEMMA3,
    INTERNVL,
    LLAVA,
    LLAVA_NEXT,
    QWEN2_5_VL,
    QWEN2_AUDIO,
    QWEN3_VL,
    processor_dir,
)
from test_native import label_runs, lf  # noqa: F401  (the fixture)

IGNORE = -100

ROWS = [
    {"messages": [{"role": "user", "content": "<image>What colour is this?"},
                  {"role": "assistant", "content": "It is red."}], "images": ["red.png"]},
    {"messages": [{"role": "user", "content": "Compare <image> and <image>, please."},
                  {"role": "assistant", "content": "The first is larger."}], "images": ["big.png", "red.png"]},
    {"messages": [{"role": "user", "content": "<image>Describe it."},
                  {"role": "assistant", "content": "A blue square."},
                  {"role": "user", "content": "And its size?"},
                  {"role": "assistant", "content": "About 1600 by 1200 pixels."}], "images": ["big.png"]},
]


def write_data(directory: Path, rows: list[dict]) -> None:
    import numpy as np
    from PIL import Image
    from scipy.io import wavfile

    directory.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (200, 10, 10)).save(directory / "red.png")
    Image.new("RGB", (1600, 1200), (10, 10, 200)).save(directory / "big.png")
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)  # 0.5 s at 16 kHz
    wavfile.write(directory / "tone.wav", 16000, tone)
    (directory / "media.json").write_text(json.dumps(rows), encoding="utf-8")
    info = {"file_name": "media.json", "formatting": "sharegpt",
            "columns": {"messages": "messages", **{k: k for k in ("images", "audios") if any(k in r for r in rows)}},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    (directory / "dataset_info.json").write_text(json.dumps({"media_test": info}), encoding="utf-8")


def run(lf, tmp_path: Path, model: Path, rows: list[dict] = ROWS,  # noqa: F811
        plugin: str = "Qwen2VLPlugin") -> tuple[Any, Any, Any, list[dict]]:
    from llamafactory.model import load_tokenizer

    data = tmp_path / "data"
    write_data(data, rows)
    args = dict(model_name_or_path=str(model), stage="sft", do_train=True, finetuning_type="full", template="native",
                dataset="media_test", dataset_dir=str(data), cutoff_len=8192, output_dir=str(tmp_path / "out"),
                overwrite_cache=True, report_to="none", cache_dir=str(tmp_path / "cache"))
    model_args, data_args, training_args, _, _ = lf["args"](args)
    module = load_tokenizer(model_args)
    template = lf["fix"](module["tokenizer"], data_args)
    # set when LF fixes the template, before any preprocessing (a tokenized_path dataset skips it)
    assert type(template.mm_plugin).__name__ == plugin
    with contextlib.redirect_stdout(io.StringIO()):
        ds = lf["get_dataset"](template, model_args, data_args, training_args, "sft", **module)
    return template, module["tokenizer"], module["processor"], list(ds["train_dataset"])


def run_direct(lf, tmp_path: Path, model: Path, row: dict, plugin: str) -> tuple[Any, Any, Any, list[dict]]:  # noqa: F811
    """:func:`run` for one row through LF's own ``SupervisedDatasetProcessor`` without ``datasets``' map: the map
    fingerprints the processor with dill, 8 s for Gemma-3's 262k-token vocabulary (``get_dataset``'s route is
    tested through the other families)."""
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.model import load_tokenizer

    data = tmp_path / "data"
    write_data(data, [row])
    args = dict(model_name_or_path=str(model), stage="sft", do_train=True, finetuning_type="full", template="native",
                dataset="unused", cutoff_len=8192, output_dir=str(tmp_path / "out"), report_to="none")
    model_args, data_args, _, _, _ = lf["args"](args)
    module = load_tokenizer(model_args)
    tokenizer, processor = module["tokenizer"], module["processor"]
    template = lf["fix"](tokenizer, data_args)
    assert type(template.mm_plugin).__name__ == plugin
    media = {k: [str(data / p) for p in row.get(k[1:], [])] or None for k in ("_images", "_videos", "_audios")}
    batch = {"_prompt": [row["messages"][:-1]], "_response": [row["messages"][-1:]], "_system": [""], "_tools": [""],
             **{k: [v] for k, v in media.items()}}
    dp = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=processor, data_args=data_args)
    out = dp.preprocess_dataset(batch)
    examples = [{"input_ids": i, "attention_mask": [1] * len(i), "labels": lab,
                 **{k[1:]: media[k] or [] for k in media}} for i, lab in zip(out["input_ids"], out["labels"])]
    return template, tokenizer, processor, examples


def test_native_media_ids_are_the_processors_and_labels_the_answers(lf, tmp_path):  # noqa: F811
    from lf_template_ext.lf.media import MediaInputs, regularized
    from lf_template_ext.model.messages import lf_text_to_parts

    model = processor_dir(QWEN2_5_VL, tmp_path / "model")
    template, tokenizer, processor, examples = run(lf, tmp_path, model)
    assert len(examples) == len(ROWS)
    assert type(template.mm_plugin).__name__ == "Qwen2VLPlugin"  # LF's collator computes the pixel values
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for row, ex in zip(ROWS, examples):
        msgs = [{"role": "system", "content": "You are a helpful assistant."}] + [
            {"role": m["role"], "content": lf_text_to_parts(m["content"])} for m in row["messages"]]
        text = processor.apply_chat_template(msgs, tokenize=False)  # the model's own template, content parts
        images = regularized(type("P", (), {"template": template})(), processor,
                             MediaInputs(images=[str(tmp_path / "data" / p) for p in row["images"]])).images
        want = processor(text=[text], images=images, add_special_tokens=False)["input_ids"][0]
        want = [int(i) for i in want]
        assert ex["input_ids"] == want
        assert ex["input_ids"].count(pad) > len(row["images"])  # expanded, not one placeholder per image
        answers = [m["content"] + "<|im_end|>\n" for m in row["messages"] if m["role"] == "assistant"]
        assert label_runs(tokenizer, ex["input_ids"], ex["labels"]) == answers
    # LF's resize: the 1600x1200 image is 768 vision tokens (LF's image_max_pixels 768*768), not the processor's own
    assert examples[2]["input_ids"].count(pad) == 768
    # LF's collator (its plugin's get_mm_inputs on the same media) makes pixel values whose grid has these tokens
    from llamafactory.data.collator import MultiModalDataCollatorForSeq2Seq

    collator = MultiModalDataCollatorForSeq2Seq(tokenizer=tokenizer, template=template, processor=processor,
                                                model=None, label_pad_token_id=IGNORE)
    batch = collator([dict(examples[1])])
    merge = processor.image_processor.merge_size ** 2
    runs = pad_runs(examples[1], pad)
    assert len(runs) == 2 and [int(g.prod()) // merge for g in batch["image_grid_thw"]] == runs


def pad_runs(example: dict, pad: int) -> list[int]:
    """The length of every run of ``pad`` in the example's ids (one run per image)."""
    runs, n = [], 0
    for i in example["input_ids"] + [None]:
        if i == pad:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_media_without_their_tags_are_refused_naming_the_sample(lf, tmp_path):  # noqa: F811
    from lf_template_ext.native.encode import NativeSampleError

    model = processor_dir(QWEN2_5_VL, tmp_path / "model")
    rows = [dict(ROWS[0], images=["red.png", "red.png"])]  # two images, one <image> tag
    with pytest.raises(NativeSampleError, match=r"sample 0 .* 2 image\(s\) but 1 <image> tag"):
        run(lf, tmp_path, model, rows)


def test_native_media_without_processor_chat_template_is_refused(lf, tmp_path):  # noqa: F811
    from lf_template_ext.native.mode import NativeModeError

    model = processor_dir(QWEN2_5_VL, tmp_path / "model")
    for name in ("chat_template.json", "chat_template.jinja"):
        if (model / name).exists():
            (model / name).unlink()
    with pytest.raises(NativeModeError) as info:
        run(lf, tmp_path, model)
    text = str(info.value)
    assert str(model) in text and "processor has no chat template" in text and "`template: native`" in text
    assert "fix:" in text


def test_align_moves_spans_with_their_runs_and_refuses_anything_else():
    from lf_template_ext.native.media import MediaAlignmentError, align

    P = 9  # the placeholder id
    starts, ends = align([1, 2, P, 3, 4], [1, 2, P, P, P, 3, 4], {P})
    assert (starts, ends) == ([0, 1, 2, 5, 6], [1, 2, 5, 6, 7])
    with pytest.raises(MediaAlignmentError):  # the processor changed text outside the placeholder
        align([1, 2, P, 3, 4], [1, 2, P, P, 3, 5], {P})
    with pytest.raises(MediaAlignmentError):  # extra ids at the end
        align([1, P, 3], [1, P, P, 3, 7], {P})
    # slack 1 (Gemma-3): the token on each side of a placeholder may be retokenized; it joins the expansion
    assert align([1, 2, P, 3, 4], [1, 5, P, P, 6, 4], {P}, slack=1) == ([0, 1, 1, 1, 5], [1, 5, 5, 5, 6])
    with pytest.raises(MediaAlignmentError):
        align([1, 2, P, 3, 4], [1, 5, P, P, 6, 4], {P})
    with pytest.raises(MediaAlignmentError):  # slack never reaches further than its tokens
        align([1, 2, P, 3, 4], [1, 5, P, P, 6, 7], {P}, slack=1)


def test_unsupported_processor_is_refused_naming_it_and_the_fix(lf):  # noqa: F811
    from lf_template_ext.lf.native_template import media_plugin, processor_class_of
    from lf_template_ext.native.mode import NativeModeError

    class MiniCPMVProcessor:  # a processor class native mode does not train media for (only its name is read)
        pass

    with pytest.raises(NativeModeError) as info:
        media_plugin(MiniCPMVProcessor(), "/models/minicpm")
    text = str(info.value)
    assert "/models/minicpm" in text and "MiniCPMVProcessor" in text and "Qwen2_5_VLProcessor" in text
    assert "fix: train this model with LF's own template" in text
    assert processor_class_of("/nonexistent") is None


#: per family: its LF plugin, one small sample (generated media), the processor call's extra arguments LF's plugin
#: implies (InternVL: one tile, as LF's InternVLPlugin without ``crop_to_patches``)
FAMILY_CASES = {
    QWEN3_VL: ("Qwen3VLPlugin", "image", {}),
    INTERNVL: ("InternVLPlugin", "image", {"crop_to_patches": False}),
    LLAVA_NEXT: ("LlavaNextPlugin", "image", {}),
    LLAVA: ("LlavaPlugin", "image", {}),
    GEMMA3: ("Gemma3Plugin", "image", {}),  # run_direct: no datasets map
}


@pytest.mark.parametrize("name", list(FAMILY_CASES))
def test_native_media_per_family(lf, tmp_path, name):  # noqa: F811
    """One sample per family: ids == the processor's ids for its own chat template over LF's regularized media,
    labels on the answer only, and as many media tokens as LF's own plugin puts in for the same media (what its
    collator's pixel values / audio features are computed for)."""
    from lf_template_ext.lf.media import MediaInputs, regularized
    from lf_template_ext.model.messages import lf_text_to_parts

    plugin_name, kind, call = FAMILY_CASES[name]
    family = FAMILIES[name]
    if kind == "image":
        row = {"messages": [{"role": "user", "content": "<image>What colour is this?"},
                            {"role": "assistant", "content": "It is red."}], "images": ["red.png"]}
    else:
        row = {"messages": [{"role": "user", "content": "<audio>What is this sound?"},
                            {"role": "assistant", "content": "A tone."}], "audios": ["tone.wav"]}
    model = processor_dir(name, tmp_path / "model")
    if name == GEMMA3:
        template, tokenizer, processor, examples = run_direct(lf, tmp_path, model, row, plugin_name)
    else:
        template, tokenizer, processor, examples = run(lf, tmp_path, model, [row], plugin=plugin_name)
    assert len(examples) == 1
    ex = examples[0]
    msgs = [{"role": m["role"], "content": lf_text_to_parts(m["content"])} for m in row["messages"]]
    text = processor.apply_chat_template(msgs, tokenize=False)
    media = [str(tmp_path / "data" / p) for p in row.get("images", row.get("audios", []))]
    prepared = type("P", (), {"template": template})()
    if kind == "image":
        kwargs = {"images": regularized(prepared, processor, MediaInputs(images=media)).images}
    else:
        kwargs = {"audio": regularized(prepared, processor, MediaInputs(audios=media)).audios, "sampling_rate": 16000}
    want = [int(i) for i in processor(text=[text], add_special_tokens=False, **kwargs, **call)["input_ids"][0]]
    assert ex["input_ids"] == want
    runs = label_runs(tokenizer, ex["input_ids"], ex["labels"])
    assert len(runs) == 1 and runs[0].startswith(row["messages"][1]["content"])
    assert len(tokenizer(runs[0][len(row["messages"][1]["content"]):], add_special_tokens=False)["input_ids"]) <= 3
    # LF's own plugin on the same media: the same number of media tokens
    token = getattr(family, f"{kind}_token")
    token = family.expanded.get(token, token)
    tag = {"image": "<image>", "audio": "<audio>"}[kind]
    lf_msgs = template.mm_plugin.process_messages(
        [dict(m) for m in row["messages"]], [media[0]] if kind == "image" else [], [],
        [media[0]] if kind == "audio" else [], processor)
    assert tag not in lf_msgs[0]["content"] or tag == token
    expected = lf_msgs[0]["content"].count(token)
    token_id = tokenizer.convert_tokens_to_ids(token)
    assert expected > 1 and ex["input_ids"].count(token_id) == expected
    from llamafactory.data.collator import MultiModalDataCollatorForSeq2Seq

    collator = MultiModalDataCollatorForSeq2Seq(tokenizer=tokenizer, template=template, processor=processor,
                                                model=None, label_pad_token_id=IGNORE)
    batch = collator([dict(ex)])
    assert ("pixel_values" if kind == "image" else "input_features") in batch


def test_native_media_audio_qwen2_audio(lf, tmp_path):  # noqa: F811
    """Qwen2-Audio through LF's own ``SupervisedDatasetProcessor`` with an audio array (LF reads audio files with
    ``torchaudio.load``, which needs torchcodec, not in the test env; an array is what that read returns): ids ==
    the processor's ids for its own chat template, labels on the answer, as many ``<|AUDIO|>`` as LF's plugin puts
    in, and LF's collator computes the audio features."""
    import numpy as np
    from llamafactory.data.collator import MultiModalDataCollatorForSeq2Seq
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.model import load_tokenizer

    from lf_template_ext.model.messages import lf_text_to_parts

    model = processor_dir(QWEN2_AUDIO, tmp_path / "model")
    args = dict(model_name_or_path=str(model), stage="sft", do_train=True, finetuning_type="full", template="native",
                dataset="unused", cutoff_len=8192, output_dir=str(tmp_path / "out"), report_to="none")
    model_args, data_args, _, _, _ = lf["args"](args)
    module = load_tokenizer(model_args)
    tokenizer, processor = module["tokenizer"], module["processor"]
    template = lf["fix"](tokenizer, data_args)
    assert type(template.mm_plugin).__name__ == "Qwen2AudioPlugin"
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)  # 0.5 s at 16 kHz
    prompt = [{"role": "user", "content": "<audio>What is this sound?"}]
    response = [{"role": "assistant", "content": "A tone."}]
    batch = {"_prompt": [prompt], "_response": [response], "_system": [""], "_tools": [""],
             "_images": [None], "_videos": [None], "_audios": [[tone]]}
    dp = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=processor, data_args=data_args)
    out = dp.preprocess_dataset(batch)
    assert len(out["input_ids"]) == 1
    ids, labels = out["input_ids"][0], out["labels"][0]
    msgs = [{"role": m["role"], "content": lf_text_to_parts(m["content"])} for m in prompt + response]
    text = processor.apply_chat_template(msgs, tokenize=False)
    want = processor(text=[text], audio=[tone], sampling_rate=16000, add_special_tokens=False)["input_ids"][0]
    assert ids == [int(i) for i in want]
    runs = label_runs(tokenizer, ids, labels)
    assert len(runs) == 1 and runs[0].startswith("A tone.")
    lf_msgs = template.mm_plugin.process_messages([dict(m) for m in prompt], [], [], [tone], processor)
    audio = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert ids.count(audio) == lf_msgs[0]["content"].count("<|AUDIO|>") > 1
    collator = MultiModalDataCollatorForSeq2Seq(tokenizer=tokenizer, template=template, processor=processor,
                                                model=None, label_pad_token_id=IGNORE)
    features = collator([{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels,
                          "images": [], "videos": [], "audios": [tone]}])
    assert "input_features" in features
