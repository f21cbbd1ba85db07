"""The LF data options that change how a template encodes (CONTRACTS.md, API).

They mirror LF's ``DataArguments`` fields of the same names, so a training YAML maps onto
them one to one (``template``, ``default_system``, ``tool_format``, ``enable_thinking``,
``preserve_thinking``, ``mask_history``; ``cutoff_len`` is recorded, not used for
rendering).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class TemplateOptions:
    default_system: Optional[str] = None
    tool_format: Optional[str] = None
    enable_thinking: Optional[bool] = True
    preserve_thinking: bool = False
    mask_history: bool = False

    @property
    def discard_history_thoughts(self) -> bool:
        """LF 0.9.5's ``discarding_history_cot = mask_history and not preserve_thinking``."""
        return bool(self.mask_history and not self.preserve_thinking)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_bool_or_none(value: str) -> Optional[bool]:
    """``true``/``false``/``none`` as the CLI and YAML spell them."""
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "y"):
        return True
    if v in ("false", "0", "no", "n"):
        return False
    if v in ("none", "null", ""):
        return None
    raise ValueError(f"expected true, false or none, got {value!r}")
