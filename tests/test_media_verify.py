"""Issue 12, verification after expansion: LF's full multimodal path against the model's HF processor.

Real objects only: the installed LF (``mm_plugin.process_messages``, the template encoding,
``process_token_ids``, ``patch_processor``), transformers' real processor assembled from the processor
fixtures (``tests/processor_fixtures.py``) and images/videos generated here. The expected numbers are
measured with those: a 1600x1200 image is 768 ``<|image_pad|>`` in LF's encoding (LF resizes to
``image_max_pixels`` = 768*768 first) and 2451 through Qwen2.5-VL's processor (up to 12,845,056 pixels).
"""

from __future__ import annotations

import pytest

processor_fixtures = pytest.importorskip(
    "processor_fixtures", reason="the processor fixtures (tests/processor_fixtures.py) are not in this tree"
)


@pytest.fixture(scope="module")
def qwen25_vl(tmp_path_factory):
    from lf_template_ext.lf import media as lf_media

    path = processor_fixtures.processor_dir(processor_fixtures.QWEN2_5_VL, tmp_path_factory.mktemp("qwen25vl"))
    return lf_media.load_processor(str(path))


def test_media_argument_defaults_are_lfs():
    """LF's ProcessorArguments defaults, read from its source (the values patch_processor sets)."""
    from lf_template_ext.lf.media import media_argument_defaults

    d = media_argument_defaults()
    assert d["image_max_pixels"] == 768 * 768 and d["image_min_pixels"] == 32 * 32
    assert d["video_max_pixels"] == 256 * 256 and d["video_fps"] == 2.0 and d["video_maxlen"] == 128
    assert d["audio_sampling_rate"] == 16000


def test_qwen2_5_vl_own_template_matches_lf_but_for_resolution(qwen25_vl):
    """qwen2_vl + the model's own chat template: every image and video case equals LF's expanded ids but two:
    the large image and the video file differ in resolution / frame sampling only (found to be that, not a
    count or placeholder difference: the processor given LF's resized media gives training's ids)."""
    from lf_template_ext.verifier import media as vm

    report = vm.verify_media("qwen2_vl", qwen25_vl, qwen25_vl.chat_template, kinds=("image", "video"))
    text = vm.format_report(report)
    by_id = {c.id: c for c in report.cases}
    not_identical = sorted(i for i, c in by_id.items() if c.status != "identical")
    assert not_identical == ["image/large/full", "image/large/gen", "video/file/full", "video/file/gen"], text
    assert {by_id[i].group for i in not_identical} == {"resolution"}, text
    large = by_id["image/large/full"]
    assert large.expected_media == {"image": 768} and large.actual_media == {"image": 2451}, text
    # the 2-second file at 4 fps: LF samples video_fps=2 frames per second (4 frames), the processor takes all 8
    assert by_id["video/file/full"].expected_media == {"video": 24} and by_id["video/file/full"].actual_media == {"video": 48}
    assert by_id["video/frames/full"].expected_media == by_id["video/frames/full"].actual_media == {"video": 24}  # 4 frames of 112x84: 2 x 6 x 8 patches / 4
    assert by_id["image/two/full"].expected_media == {"image": 4 + 99}
    assert "resolution: 4 (image/large/full, image/large/gen, video/file/full, video/file/gen)" in text


def test_training_media_arguments_reach_lfs_side(qwen25_vl):
    """LF trained with the processor's own pixel limit: the large image is no longer resized, ids equal."""
    from lf_template_ext.verifier import media as vm

    case = [c for c in vm.probe_cases(("image",)) if c.id == "image/large"]
    report = vm.verify_media("qwen2_vl", qwen25_vl, cases=case, media_args={"image_max_pixels": 12845056})
    assert [c.status for c in report.cases] == ["identical", "identical"], vm.format_report(report)
    assert report.options["media"]["image_max_pixels"] == 12845056


def test_a_template_with_another_placeholder_is_found(qwen25_vl):
    """The check can fail: a template writing the bare pad token (no vision_start/end) is a placeholder
    difference on every image case, with the first diverging token shown."""
    from lf_template_ext.verifier import media as vm

    jinja = qwen25_vl.chat_template.replace("<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>")
    assert jinja != qwen25_vl.chat_template
    cases = [c for c in vm.probe_cases(("image",), large=False) if c.id in ("image/first", "image/later-turn")]
    report = vm.verify_media("qwen2_vl", qwen25_vl, jinja, cases=cases)
    groups = vm.groups(report)
    assert sorted(groups["placeholder"]) == sorted(c.id for c in report.cases), vm.format_report(report)
    first = report.cases[0].first_diff
    assert "<|vision_start|>" in first.expected_text and "<|vision_start|>" not in first.actual_text


def test_groups_collapse_media_runs():
    """The grouping rule on plain ids: runs of a medium's token collapse; what remains decides."""
    from lf_template_ext.verifier.media import group_of, media_counts

    pad = {9: "image"}
    assert group_of([1, 9, 9, 9, 2], [1, 9, 2], pad) == "count"
    assert group_of([1, 8, 9, 9, 2], [1, 9, 9, 2], pad) == "placeholder"
    assert group_of([1, 9, 9, 2, 9], [1, 9, 2, 9, 9, 9], pad) == "count"
    assert group_of([1, 9, 2, 9], [1, 9, 2], pad) == "placeholder"
    assert media_counts([1, 9, 9, 2, 9], pad) == {"image": 3}


# -- check --dataset with media -------------------------------------------------------------------------

MM_ENTRIES = {  # as LF's data/dataset_info.json declares mllm_demo (sharegpt) and an alpaca dataset with images
    "mm_sharegpt": {
        "file_name": "mm_sharegpt.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    },
    "mm_alpaca": {
        "file_name": "mm_alpaca.json",
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "images"},
    },
}


def write_mm_dataset(d):
    import json

    from lf_template_ext.verifier.media import probe_image

    d.mkdir(parents=True, exist_ok=True)
    (d / "img").mkdir(exist_ok=True)
    for name, (w, h, seed) in {"small": (64, 48, 0), "medium": (320, 240, 1), "large": (1600, 1200, 2)}.items():
        probe_image(w, h, seed).save(d / "img" / f"{name}.png")
    sharegpt = [
        {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "Stripes."}],
         "images": ["img/small.png"]},
        {"messages": [{"role": "user", "content": "<image>Where is the box?"}, {"role": "assistant", "content": "Top left."}],
         "images": ["img/large.png"]},
        {"messages": [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."},
                      {"role": "user", "content": "<image><image>Compare."}, {"role": "assistant", "content": "Same."}],
         "images": ["img/small.png", "img/medium.png"]},
        {"messages": [{"role": "user", "content": "<image><image>Two tags, one image."}, {"role": "assistant", "content": "?"}],
         "images": ["img/small.png"]},
    ]  # fmt: skip
    alpaca = [
        {"instruction": "<image>Describe the picture.", "input": "", "output": "A pattern.", "images": ["img/medium.png"]},
        {"instruction": "Say hi.", "input": "", "output": "Hi.", "images": []},
    ]
    (d / "mm_sharegpt.json").write_text(json.dumps(sharegpt, indent=1), encoding="utf-8")
    (d / "mm_alpaca.json").write_text(json.dumps(alpaca, indent=1), encoding="utf-8")
    (d / "dataset_info.json").write_text(json.dumps(MM_ENTRIES, indent=1), encoding="utf-8")
    return d


def test_check_dataset_with_images(tmp_path, capsys):
    """check --dataset on sharegpt and alpaca rows with image files: LF's expanded ids vs the dir's processor,
    sample by sample; the large image is a resolution difference, the row whose tags outnumber its images is
    one LF cannot encode (unsupported, fails the check unless --allow-skipped)."""
    import json

    from lf_template_ext.cli.main import main as cli_main

    model = processor_fixtures.processor_dir(processor_fixtures.QWEN2_5_VL, tmp_path / "model")
    data = write_mm_dataset(tmp_path / "data")
    args = ["check", str(model), "--template", "qwen2_vl", "--dataset", "mm_sharegpt,mm_alpaca", "--dataset-dir", str(data)]
    code = cli_main([*args, "--workers", "1", "--report", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    text = captured.out
    print(text)
    assert "note: samples with media: LF's media arguments from LF's defaults (image_max_pixels=589824" in captured.err
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert code == 1, text
    assert report["summary"] == {"identical": 4, "boundary_only": 0, "differs": 1, "unsupported": 1}, text
    assert report["samples"]["mm_sharegpt"]["differs"] == [1] and report["samples"]["mm_sharegpt"]["unsupported"] == [3]
    case = next(c for c in report["cases"] if c["status"] == "differs")
    assert case["group"] == "resolution" and case["media_tokens"] == {"training": {"image": 768}, "engine": {"image": 2451}}
    assert "media resolution" in text and "media tokens training 768 image, engine 2451 image" in text
    assert "The number of images does not match" in text


def test_trained_media_args_come_from_training_args_yaml(tmp_path):
    """The dataset check's reference uses the run's own media arguments (LF's training_args.yaml), here or in
    the output dir of a checkpoint; LF's defaults otherwise."""
    from lf_template_ext.verifier.media import trained_media_args

    run = tmp_path / "run"
    (run / "checkpoint-50").mkdir(parents=True)
    assert trained_media_args(str(run)) == (None, "LF's defaults")
    (run / "training_args.yaml").write_text("template: qwen2_vl\nimage_max_pixels: 1048576\nvideo_fps: 1.0\n", encoding="utf-8")
    args, source = trained_media_args(str(run / "checkpoint-50"))
    assert args == {"image_max_pixels": 1048576, "video_fps": 1.0} and source == str(run / "training_args.yaml")


def test_check_dataset_with_images_without_a_processor(tmp_path, capsys):
    """A dir without processor files: rows with images are listed unsupported with the reason, text rows checked."""
    import json
    import shutil

    from fixtures_locate import locate

    from lf_template_ext.cli.main import main as cli_main

    model = tmp_path / "text-model"
    shutil.copytree(locate() / "Qwen--Qwen2.5-1.5B-Instruct", model)
    data = write_mm_dataset(tmp_path / "data")
    code = cli_main(["check", str(model), "--template", "qwen", "--dataset", "mm_alpaca", "--dataset-dir", str(data),
                     "--workers", "1", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["summary"] == {"identical": 1, "boundary_only": 0, "differs": 0, "unsupported": 1}
    assert "has no processor AutoProcessor loads" in report["cases"][0]["reason"]


def test_content_parts_use_the_one_parts_tags_mapping():
    """The probe's requests come from model.messages' mapping (LF_TAGS), with each medium attached in tag order."""
    from lf_template_ext.model.messages import lf_text_to_parts, parts_to_lf_text
    from lf_template_ext.verifier import media as vm

    iters = {"image": iter(["i1", "i2"]), "video": iter(["v1"]), "audio": iter([])}
    parts = vm.content_parts("Look <image> then<video><image>!", iters)
    assert parts == [
        {"type": "text", "text": "Look "}, {"type": "image", "image": "i1"}, {"type": "text", "text": " then"},
        {"type": "video", "video": "v1"}, {"type": "image", "image": "i2"}, {"type": "text", "text": "!"},
    ]  # fmt: skip
    assert [{"type": p["type"], **({"text": p["text"]} if p["type"] == "text" else {})} for p in parts] == lf_text_to_parts(
        "Look <image> then<video><image>!"
    )
    assert parts_to_lf_text(parts)[0] == "Look <image> then<video><image>!"
    assert vm.content_parts("no media here", iters) == "no media here"
    assert not hasattr(vm, "TAGS"), "verifier.media keeps a second parts<->tags mapping"


def test_multimodal_verify_record_is_what_one_family_gives_now(tmp_path):
    """docs/multimodal-verify.json (scripts/multimodal_verify.py, the coverage table's *exact after expansion*)
    says for Qwen2-VL what a re-run of that family gives now: the compiled template expanded by the processor,
    resolution taken out (the large image and the video file through LF's resize/sampling give training's ids)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import multimodal_verify

    record = multimodal_verify.load()["families"][processor_fixtures.QWEN2_VL]
    now = multimodal_verify.sweep_family(processor_fixtures.QWEN2_VL, str(tmp_path))
    assert now["verdict"] == "exact after expansion", "\n".join(now["report"])
    assert {k: now[k] for k in ("verdict", "cases", "groups")} == {k: record[k] for k in ("verdict", "cases", "groups")}, (
        "docs/multimodal-verify.json is stale: run python scripts/multimodal_verify.py"
    )
    assert "qwen2_vl" in multimodal_verify.exact_templates()
