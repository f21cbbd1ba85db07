"""Resolution parity (issue 12, item 3): LF's training resolution vs a served processor's.

Real inputs: LF 0.9.5's own ``ProcessorArguments``, its ``Qwen2VLPlugin`` (``process_messages`` and
``_get_mm_inputs`` with the processor patched by LF's ``patch_processor``), transformers' Qwen2.5-VL
processor built from the Qwen2.5 tokenizer fixture and Qwen2.5-VL's preprocessor config, images made
with PIL in the test. The pure arithmetic is checked against LF's and transformers' own functions.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from lf_template_ext.errors import BadInputError
from lf_template_ext.model.media_args import (
    MediaArgs,
    lf_resize,
    qwen_geometry,
    qwen_smart_resize,
    qwen_static_cap,
    qwen_trained_grid,
    static_setting,
)

# Qwen/Qwen2.5-VL-7B-Instruct's preprocessor_config.json (its hub copy names Qwen2VLImageProcessor)
QWEN25_VL_PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}
GEO = qwen_geometry(QWEN25_VL_PREPROCESSOR)
LF_MAX, LF_MIN = 768 * 768, 32 * 32
# image sizes of the sweep: every shape from 100 px to ~4000 px a side in uneven steps, plus extreme aspects
SWEEP = [(w, h) for w in range(100, 4100, 37) for h in range(100, 4100, 41)] + [
    (w, h) for w in (30, 60, 5000, 9000) for h in (40, 80, 6000, 11000)
]


def test_media_args_are_lfs_processor_arguments():
    from dataclasses import MISSING, fields

    from llamafactory.hparams.model_args import ProcessorArguments

    lf = {f.name: f.default for f in fields(ProcessorArguments) if f.default is not MISSING}
    ours = MediaArgs().to_record()
    assert ours == lf, "MediaArgs must carry LF's names and defaults"
    changed = MediaArgs(image_max_pixels=512 * 512, video_fps=1.0)
    assert MediaArgs.from_record(json.loads(json.dumps(changed.to_record()))) == changed
    assert MediaArgs.from_record({"image_max_pixels": 1000, "a_newer_lf_key": 1}).image_max_pixels == 1000
    with pytest.raises(BadInputError, match="image_max_pixels"):
        MediaArgs.from_record({"image_max_pixels": "big"})
    with pytest.raises(BadInputError, match="crop_to_patches"):
        MediaArgs.from_record({"crop_to_patches": 1})


def test_lf_resize_is_lfs_arithmetic():
    """``lf_resize`` == LF's own size arithmetic (its video-size twin of ``_preprocess_image``) over the
    sweep, and == the size of LF's real ``_preprocess_image`` on PIL images (plain and Qwen rules)."""
    from llamafactory.data.mm_plugin import BasePlugin, Qwen2VLPlugin
    from PIL import Image

    qwen = Qwen2VLPlugin(image_token="<|image_pad|>", video_token="<|video_pad|>", audio_token=None)
    base = BasePlugin(image_token="<image>", video_token=None, audio_token=None)
    for w, h in SWEEP:
        assert lf_resize(w, h, LF_MAX, LF_MIN, "qwen2_vl") == qwen._get_qwen_video_size_after_regularization(w, h, LF_MAX, LF_MIN)
    for w, h in [(2000, 1500), (1600, 1200), (500, 400), (20, 10), (10, 3000), (9000, 40)]:
        img = Image.new("RGB", (w, h))
        assert lf_resize(w, h, LF_MAX, LF_MIN, "qwen2_vl") == qwen._preprocess_image(img, image_max_pixels=LF_MAX, image_min_pixels=LF_MIN).size
        assert lf_resize(w, h, LF_MAX, LF_MIN) == base._preprocess_image(img, image_max_pixels=LF_MAX, image_min_pixels=LF_MIN).size


def _feasible_caps(w: int, h: int) -> tuple[float, float, bool]:
    """The processor caps M with which a config-only processor gives LF's grid for a (w, h) image: within
    the half-open interval [lo, hi) of the floor branch (empty when lo >= hi), or any M >= the rounded area
    of the original when that rounding is LF's grid (the third value).

    smart_resize floors ``side * s / F`` with ``s = sqrt(M / (w*h))``; it equals LF's side ``S`` iff
    ``S <= side * s < S + F`` for both sides."""
    th, tw = qwen_trained_grid(w, h, LF_MAX, LF_MIN, "qwen2_vl", GEO)
    F = GEO.factor
    s_lo = max(th / h, tw / w)
    s_hi = min((th + F) / h, (tw + F) / w)
    rounded = (round(h / F) * F, round(w / F) * F)
    return s_lo**2 * w * h, s_hi**2 * w * h, rounded == (th, tw)


def test_no_static_max_pixels_reproduces_lfs_grid():
    """Disproof over the sweep: for images LF shrinks, a config-only processor must floor them (its cap is
    below their rounded size) onto LF's grid, and the caps that do so form one interval per image (the
    floor rule); the intersection over the sweep is empty, so no max_pixels serves them all as trained.
    The smart_resize we reason with is transformers'."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    for w, h in SWEEP[::7]:
        for cap in (LF_MAX, 698_544, GEO.max_pixels):
            assert qwen_smart_resize(h, w, GEO.factor, GEO.min_pixels, cap) == smart_resize(h, w, GEO.factor, GEO.min_pixels, cap)
    lo, hi = 0.0, math.inf
    witnesses = [None, None]
    for w, h in SWEEP:
        if w * h <= LF_MAX:
            continue  # LF keeps it; the processor alone rounds it as in training for any cap above its rounding
        a, b, big_ok = _feasible_caps(w, h)
        if big_ok:
            continue  # also served as trained by any cap above its own rounding: leave it out (a subset suffices)
        if a > lo:
            lo, witnesses[0] = a, (w, h)
        if b < hi:
            hi, witnesses[1] = b, (w, h)
    assert lo >= hi, f"a static max_pixels in [{lo}, {hi}) would reproduce LF's grid"
    print(f"\nno static max_pixels: {witnesses[0]} needs >= {lo:,.0f}, {witnesses[1]} needs < {hi:,.0f}")


def test_static_cap_plus_client_resize_is_exact_and_minimal():
    """With the cap repair writes, LF's resize on the client + the processor == LF's grid for every size
    of the sweep; one pixel less and some client-resized image is floored again (the cap is the least)."""
    cap = qwen_static_cap(LF_MAX, LF_MIN, GEO.factor, GEO.min_pixels, "qwen2_vl")
    assert cap == 698_544
    setting = static_setting(QWEN25_VL_PREPROCESSOR, MediaArgs(), "qwen2_vl")
    assert setting.keys == {"max_pixels": cap} and not setting.exact and setting.client_resize

    def served(w: int, h: int, m: int) -> tuple[int, int]:
        cw, ch = lf_resize(w, h, LF_MAX, LF_MIN, "qwen2_vl")
        return qwen_smart_resize(ch, cw, GEO.factor, GEO.min_pixels, m)

    for w, h in SWEEP:
        assert served(w, h, cap) == qwen_trained_grid(w, h, LF_MAX, LF_MIN, "qwen2_vl", GEO)
    # the image that needs the whole cap: 71x8307 (LF keeps it: 589,797 pixels) rounds up to 84x8316
    assert served(71, 8307, cap) == (8316, 84)
    assert served(71, 8307, cap - 1) != served(71, 8307, cap), "one pixel less floors it again"


def test_qwen3_vl_static_cap_keeps_client_resized_images_exact():
    """Qwen3-VL's processor (Qwen2VLImageProcessor with patch 16: factor 32, its ``size`` limits): the same
    rule gives its own cap, written into ``size.longest_edge`` too, and config + client resize == LF's grid."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    cfg = {  # Qwen/Qwen3-VL-8B-Instruct's preprocessor_config.json, the keys that matter
        "size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16, "temporal_patch_size": 2,
        "merge_size": 2, "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast",
    }  # fmt: skip
    geo = qwen_geometry(cfg)
    assert (geo.factor, geo.min_pixels, geo.max_pixels) == (32, 65536, 16777216)
    setting = static_setting(cfg, MediaArgs(), "qwen3_vl")
    cap = setting.serving_max_pixels
    assert setting.keys == {"max_pixels": cap, "size": {"longest_edge": cap, "shortest_edge": 65536}}
    for w, h in SWEEP[::3]:
        cw, ch = lf_resize(w, h, LF_MAX, LF_MIN, "qwen3_vl")
        trained = smart_resize(ch, cw, 32, 65536, 16777216)  # what LF's training fed the model
        assert smart_resize(ch, cw, 32, 65536, cap) == trained == qwen_trained_grid(w, h, LF_MAX, LF_MIN, "qwen3_vl", geo)


@pytest.fixture(scope="module")
def qwen25_vl_dir(tmp_path_factory) -> Path:
    """A Qwen2.5-VL processor dir: the Qwen2.5 tokenizer fixture + Qwen2.5-VL's preprocessor config (the
    FIXTURES helper's tests/processor_fixtures.py when present)."""
    dest = tmp_path_factory.mktemp("qwen25vl")
    try:
        from processor_fixtures import QWEN2_5_VL, processor_dir  # type: ignore[import-not-found]

        return Path(processor_dir(QWEN2_5_VL, dest / "dir"))
    except ImportError:
        pass
    from fixtures_locate import locate

    src = Path(locate()) / "Qwen--Qwen2.5-1.5B-Instruct"
    d = dest / "dir"
    d.mkdir()
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, d / f.name)
    (d / "preprocessor_config.json").write_text(json.dumps(QWEN25_VL_PREPROCESSOR, indent=2))
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    return d


def _image(w: int, h: int):
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(12)
    return Image.fromarray(rng.randint(0, 256, size=(h, w, 3), dtype=np.uint8))


def _served(model_dir: Path, image) -> tuple[int, tuple[int, int], object, list[int]]:
    """(image_pad count, resized (h, w), pixel_values, the expanded text's ids) through the dir's processor, as
    vLLM/SGLang call it."""
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(model_dir))
    out = proc(text=["<|vision_start|><|image_pad|><|vision_end|>Where is the cat?"], images=[image], return_tensors="pt")
    pad = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    _t, gh, gw = (int(x) for x in out["image_grid_thw"][0])
    patch = proc.image_processor.patch_size
    ids = out["input_ids"][0].tolist()
    return ids.count(pad), (gh * patch, gw * patch), out["pixel_values"], ids


def _lf(model_dir: Path, image, media: MediaArgs) -> tuple[int, tuple[int, int], object, list[int]]:
    """The same through LF 0.9.5: the processor loaded and patched as LF patches it, the qwen2_vl template's
    own plugin expanding ``<image>``."""
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import ModelArguments
    from llamafactory.model.patcher import patch_processor
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(model_dir))
    patch_processor(proc, proc.tokenizer, ModelArguments(model_name_or_path=str(model_dir), **media.to_record()))
    plugin = TEMPLATES["qwen2_vl"].mm_plugin
    msgs = plugin.process_messages([{"role": "user", "content": "<image>Where is the cat?"}], [image], [], [], proc)
    inputs = plugin._get_mm_inputs([image], [], [], proc)
    _t, gh, gw = (int(x) for x in inputs["image_grid_thw"][0])
    patch = proc.image_processor.patch_size
    ids = proc.tokenizer(msgs[0]["content"], add_special_tokens=False)["input_ids"]  # the expanded text's ids
    return msgs[0]["content"].count("<|image_pad|>"), (gh * patch, gw * patch), inputs["pixel_values"], ids


def _lf_video(model_dir: Path, frames: list, media: MediaArgs) -> tuple[int, tuple[int, ...]]:
    """(video_pad count, grid thw) of a video given as frames, through LF's qwen2_vl plugin."""
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import ModelArguments
    from llamafactory.model.patcher import patch_processor
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(model_dir))
    patch_processor(proc, proc.tokenizer, ModelArguments(model_name_or_path=str(model_dir), **media.to_record()))
    plugin = TEMPLATES["qwen2_vl"].mm_plugin
    msgs = plugin.process_messages([{"role": "user", "content": "<video>What happens?"}], [], [frames], [], proc)
    grid = tuple(int(x) for x in plugin._get_mm_inputs([], [frames], [], proc)["video_grid_thw"][0])
    return msgs[0]["content"].count("<|video_pad|>"), grid


def _served_video(model_dir: Path, frames: list) -> tuple[int, tuple[int, ...]]:
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(model_dir))
    out = proc(text=["<|vision_start|><|video_pad|><|vision_end|>What happens?"], videos=[frames], return_tensors="pt")
    pad = proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return int((out["input_ids"][0] == pad).sum()), tuple(int(x) for x in out["video_grid_thw"][0])


def test_qwen25_vl_2000x1500_lf_vs_repaired_dir(qwen25_vl_dir, tmp_path, capsys):
    """Must-show of issue 12: a 2000x1500 image through LF vs the dir's processor before and after repair
    (config only; config + the client resize), and the repair's writes undone by restore."""
    from lf_template_ext import resize_like_training
    from lf_template_ext.model.options import TemplateOptions
    from lf_template_ext.modeldir.restore import restore
    from lf_template_ext.workflows.media import resolution
    from lf_template_ext.workflows.repair import apply_plan, plan_repair

    d = tmp_path / "ft"
    shutil.copytree(qwen25_vl_dir, d, symlinks=True)
    media = MediaArgs()  # LF's defaults, as a qwen2_vl fine-tune trained without image_* keys
    (d / "lf_template_ext.json").write_text(
        json.dumps({"template": "qwen2_vl", "options": {}, "media": media.to_record(), "mm_plugin": "qwen2_vl"})
    )
    original_cfg = (d / "preprocessor_config.json").read_bytes()
    img = _image(2000, 1500)

    lf_count, lf_size, lf_pixels, lf_ids = _lf(d, img, media)
    before_count, before_size, _, before_ids = _served(d, img)
    res = resolution(str(d), "qwen2_vl")
    assert res.mismatch() == "training saw at most 589,824 pixels per image, this dir serves up to 12,845,056"
    from lf_template_ext.cli.main import main

    capsys.readouterr()
    main(["check", str(d), "--template", "qwen2_vl"])
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("resolution:")]
    assert line and line[0].startswith(
        "resolution: training saw at most 589,824 pixels per image, this dir serves up to 12,845,056"
    ), out

    plan = plan_repair(str(d), "qwen2_vl", TemplateOptions())
    assert json.loads(plan.files["preprocessor_config.json"])["max_pixels"] == 698_544
    serving = plan.files["SERVING.md"].decode()
    assert "resize_like_training" in serving and "--mm-processor-kwargs '{\"max_pixels\": 698544}'" in serving
    backup, _txn = apply_plan(plan)
    assert backup is not None
    assert resolution(str(d), "qwen2_vl").mismatch() is None

    cfg_count, cfg_size, _, _ = _served(d, img)
    client = resize_like_training(img, str(d))
    both_count, both_size, both_pixels, both_ids = _served(d, client)
    with capsys.disabled():
        print(
            f"\n2000x1500 Qwen2.5-VL: LF {lf_count} <|image_pad|> at {lf_size[1]}x{lf_size[0]}; dir before repair "
            f"{before_count} at {before_size[1]}x{before_size[0]}; after repair, config only {cfg_count} at "
            f"{cfg_size[1]}x{cfg_size[0]}; config + resize_like_training {both_count} at {both_size[1]}x{both_size[0]} "
            f"(client image {client.width}x{client.height})"
        )
    assert (lf_count, lf_size) == (768, (672, 896))
    assert before_count != lf_count and before_size != lf_size
    assert (both_count, both_size) == (lf_count, lf_size)
    assert both_ids == lf_ids != before_ids, "the expanded user text: LF's ids through the repaired dir + client resize"
    assert bool((both_pixels == lf_pixels).all()), "the client resize makes LF's PIL calls: same pixels"
    assert cfg_count != lf_count  # no static setting reproduces LF's grid (test above): config alone is near, not equal

    capsys.readouterr()
    main(["check", str(d), "--template", "qwen2_vl"])
    out = capsys.readouterr().out
    assert "resolution: training saw at most 589,824 pixels per image, the processor caps at 698,544" in out, out

    # video frames: LF's frames (video_max_pixels 65,536) vs the repaired dir's video processor, which now has
    # its own config (before: transformers read preprocessor_config.json for videos, the image cap)
    assert json.loads((d / "video_preprocessor_config.json").read_text())["max_pixels"] == 152_880
    frames = [_image(640, 480) for _ in range(4)]
    lf_v = _lf_video(d, frames, media)
    client_frames = [resize_like_training(f, str(d), video=True) for f in frames]
    served_v = _served_video(d, client_frames)
    with capsys.disabled():
        print(f"4 frames 640x480: LF {lf_v[0]} <|video_pad|> at {lf_v[1]}; repaired dir + client resize {served_v[0]} at {served_v[1]}")
    assert served_v == lf_v

    restore(str(d))
    assert (d / "preprocessor_config.json").read_bytes() == original_cfg


def test_training_record_keeps_media_arguments():
    """The training hook's record: a template with an mm plugin keeps the run's media arguments (LF's
    ModelArguments, as ``get_train_args`` returned them) and the plugin name; a text-only template none."""
    from types import SimpleNamespace

    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import DataArguments, ModelArguments

    from lf_template_ext.lf.media_args import media_of
    from lf_template_ext.lf.plugin.export import _record_for_training

    model_args = ModelArguments(model_name_or_path="x", image_max_pixels=512 * 512, video_fps=1.0)
    state = SimpleNamespace(
        data_args=DataArguments(template="qwen2_vl"), template=TEMPLATES["qwen2_vl"], train_media=media_of(model_args),
        extra_tokens_before_fix=None, base_tokenizer_path="x",
    )
    rec = _record_for_training(state)
    assert rec["mm_plugin"] == "qwen2_vl"
    assert MediaArgs.from_record(rec["media"]) == MediaArgs(image_max_pixels=512 * 512, video_fps=1.0)
    state.data_args, state.template = DataArguments(template="qwen"), TEMPLATES["qwen"]
    rec = _record_for_training(state)
    assert "media" not in rec and "mm_plugin" not in rec


def test_resize_like_training_sources_and_errors(tmp_path):
    """The client resize takes MediaArgs, a record dict or a dir; a dir without recorded media arguments or a
    missing dir is bad input naming the file and the fix (exit 2 through the CLI's one mapping)."""
    from PIL import Image

    from lf_template_ext import resize_like_training

    img = Image.new("L", (2000, 1500))
    small = MediaArgs(image_max_pixels=256 * 256)
    out = resize_like_training(img, small, plugin="qwen2_vl")
    assert out.size == lf_resize(2000, 1500, 256 * 256, LF_MIN, "qwen2_vl") == (295, 221) and out.mode == "RGB"
    record = {"template": "qwen2_vl", "media": small.to_record(), "mm_plugin": "qwen2_vl"}
    assert resize_like_training(img, record).size == (295, 221)
    assert resize_like_training(Image.new("RGB", (10, 6000)), MediaArgs(), plugin="qwen2_vl").size == (28, 5040)
    assert resize_like_training(Image.new("RGB", (10, 6000)), MediaArgs()).size == (10, 6000)  # no plugin rule
    assert resize_like_training(img, record, video=True).size == lf_resize(2000, 1500, 65536, 256, "qwen2_vl")
    (tmp_path / "lf_template_ext.json").write_text(json.dumps({"template": "qwen", "options": {}}))
    with pytest.raises(BadInputError, match="keeps no media arguments") as e:
        resize_like_training(img, str(tmp_path))
    assert "lf_template_ext.json" in str(e.value) and "MediaArgs(" in str(e.value)
    with pytest.raises(BadInputError, match="no such model dir"):
        resize_like_training(img, str(tmp_path / "missing"))


def test_adapter_dir_gets_the_cap_as_a_flag(tmp_path):
    """A LoRA adapter dir: engines read the base model's processor, so the facts come from the base model's
    config and SERVING.md's Images section passes the cap with vLLM's --mm-processor-kwargs."""
    from lf_template_ext.workflows.media import resolution, serving_lines

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir()
    adapter.mkdir()
    (base / "preprocessor_config.json").write_text(json.dumps(QWEN25_VL_PREPROCESSOR))
    res = resolution(str(adapter), "qwen2_vl", media=MediaArgs(), plugin="qwen2_vl", config_dir=str(base))
    assert res.mismatch() == "training saw at most 589,824 pixels per image, this dir serves up to 12,845,056"
    lines = "\n".join(serving_lines(res, str(adapter), is_adapter=True))
    assert "engines read the base model's processor" in lines
    assert "--mm-processor-kwargs '{\"max_pixels\": 698544}'" in lines and "resize_like_training" in lines


def test_internvl_serves_one_tile_only_with_the_request_kwargs(tmp_path):
    """LF trains InternVL one 448x448 tile per image (crop_to_patches off: 256 tokens); transformers'
    InternVLProcessor tiles per call whatever its config says, so the setting travels as request kwargs
    (SERVING.md's --mm-processor-kwargs), and only with them is the count training's."""
    from PIL import Image
    from processor_fixtures import INTERNVL, load_processor, processor_dir

    from lf_template_ext.workflows.media import Resolution, serving_lines

    d = processor_dir(INTERNVL, tmp_path / "internvl")
    config = json.loads((d / "preprocessor_config.json").read_text())
    setting = static_setting(config, MediaArgs(), "intern_vl")
    assert setting.keys is None and setting.request_kwargs == {"crop_to_patches": False}, setting
    processor = load_processor(INTERNVL, tmp_path / "internvl2")
    image = Image.new("RGB", (1600, 1200), (120, 30, 200))
    text = "<IMG_CONTEXT>"
    count = lambda **kw: processor(text=[text], images=[image], **kw)["input_ids"][0].count(  # noqa: E731
        processor.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"))
    assert count(crop_to_patches=False) == 256 < count()  # training's one tile; the processor's default tiles
    lines = "\n".join(serving_lines(Resolution(plugin="intern_vl", media=MediaArgs(), recorded=True, image=setting, video=None, served_max_pixels=None), str(d), False))
    assert "--mm-processor-kwargs '{\"crop_to_patches\": false}'" in lines, lines
