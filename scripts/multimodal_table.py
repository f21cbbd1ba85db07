"""Write the per-plugin table of docs/multimodal.md (between its ``plugin-table`` markers) from model/media.py
and LF's installed templates: what one media part of each LF plugin compiles to, or why it cannot.

    python scripts/multimodal_table.py            # rewrites the block in docs/multimodal.md
    python scripts/multimodal_table.py --check    # exit 1 if the block is stale

tests/test_media_compile.py checks it. The rest of docs/multimodal.md is written by hand (other sections
belong to the expansion, resolution and dataset checks).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOC = REPO / "docs" / "multimodal.md"
START, END = "<!-- plugin-table:start (scripts/multimodal_table.py) -->", "<!-- plugin-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "\\n")


def table() -> str:
    from lf_template_ext.lf import compat
    from lf_template_ext.model import media as mm

    by_plugin: dict[str, list[str]] = {}
    specs = {}
    for name, template in compat._template_module().TEMPLATES.items():
        media = compat.media_spec(template.mm_plugin)
        if media is None:
            continue
        by_plugin.setdefault(media.plugin, []).append(name)
        rule = mm.RULES.get(media.plugin)
        if media.plugin not in specs or (rule is not None and name == rule.key):
            specs[media.plugin] = media  # shown with the template named like the plugin, else the first
    lines = [
        f"LF {compat.check_version()}: {sum(map(len, by_plugin.values()))} templates with a multimodal plugin, "
        f"{len(by_plugin)} plugin classes. A part's text is shown with the tokens of the template named like the plugin (else the first) (`N`: the "
        "part's number of its kind in the conversation).",
        "",
        "| LF plugin | templates | image | video | audio | status | why / note |",
        "|---|---|---|---|---|---|---|",
    ]
    for plugin in sorted(by_plugin, key=lambda p: mm.RULES[p].key if p in mm.RULES else p):
        media = specs[plugin]
        rule = mm.rule_for(media)
        cells = []
        for k in mm.KINDS:
            p = mm.plan(media, k)
            if p.ok:
                cells.append("`" + _cell(p.head + ("N" if p.numbered else "") + p.tail) + "`")
            elif media.takes(k) or (rule is not None and k in rule.refused):
                cells.append("refused")
            else:
                cells.append("-")
        state, why = mm.status(media)
        notes = [why] if why else []
        notes += [f"{k}: {r}" for k, r in mm.kinds_refused(media).items()]
        if rule is not None and rule.note:
            notes.append(rule.note)
        key = rule.key if rule else "?"
        lines.append(
            f"| `{key}` ({plugin}) | {', '.join(by_plugin[plugin])} | {' | '.join(cells)} | {state} | "
            f"{_cell('; '.join(notes))} |"
        )
    return "\n".join(lines) + "\n"


def render(doc: str) -> str:
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {START!r} / {END!r} are missing")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + "\n" + table() + END + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the block is stale")
    args = parser.parse_args()
    doc = DOC.read_text(encoding="utf-8")
    new = render(doc)
    if args.check:
        if new != doc:
            print(f"{DOC} is stale: run python scripts/multimodal_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
