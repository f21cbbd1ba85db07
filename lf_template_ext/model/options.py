"""The options: LF's data options that change how a template encodes, and this package's own.

One table (:data:`TEMPLATE_OPTIONS`) names every LF option once: its ``TemplateOptions`` field,
which is also the LF ``DataArguments`` field, the training-YAML key and the key in the
train-time record, its command-line flag and how a text value is read. The CLI's flags, the
record, the YAML reader, the export hook and the LF adapter all read this table, so adding an
option is one row here (docs/contracts.md, "Enable switch and options").

:data:`EXTENSION_KEYS` lists this package's own ``template_ext_*`` YAML keys. The enable hook
strips them from LF's arguments before LF's parser (which rejects unknown keys) sees them and
stores them in :data:`EXTENSION_OPTIONS`, where every reader finds them.

Pure data and parsing: no LF, no transformers, no file I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping, Optional

from ..errors import BadInputError


@dataclass(frozen=True)
class TemplateOptions:
    """LF's data arguments that change the encoding (same names as LF's ``DataArguments``)."""

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

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "TemplateOptions":
        """The options named in ``values`` (a record's ``options``, a YAML), defaults for the rest."""
        return cls(**{o.name: values[o.name] for o in TEMPLATE_OPTIONS if o.name in values})

    @classmethod
    def from_data_args(cls, data_args: Any) -> "TemplateOptions":
        """The options of an LF ``DataArguments`` (or anything with its attributes)."""
        default = cls()
        out = {o.name: getattr(data_args, o.name, getattr(default, o.name)) for o in TEMPLATE_OPTIONS}
        for o in TEMPLATE_OPTIONS:
            if o.kind == "bool":
                out[o.name] = bool(out[o.name])
        return cls(**out)


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


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    parsed = parse_bool_or_none(str(value))
    if parsed is None:
        raise ValueError("expected true or false")
    return parsed


def _bool_or_none(value: Any) -> Optional[bool]:
    return value if value is None or isinstance(value, bool) else parse_bool_or_none(str(value))


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None else int(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "bool": _bool,
    "bool_or_none": _bool_or_none,
    "int": _int_or_none,
}


@dataclass(frozen=True)
class Option:
    """One LF option: the field/YAML/record key ``name``, its CLI ``flag`` and value ``kind``."""

    name: str
    kind: str  # "text" | "bool" | "bool_or_none" | "int"
    help: str
    value_name: str = ""  # the CLI metavar of a text option

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        return {"bool": "{true,false}", "bool_or_none": "{true,false,none}"}.get(self.kind, self.value_name or "VALUE")

    def parse(self, value: Any) -> Any:
        """The value as the option holds it (raises ``ValueError``/``TypeError`` on a bad one)."""
        return _PARSERS[self.kind](value)


#: Every LF data option that changes the training encoding, in ``TemplateOptions`` order.
TEMPLATE_OPTIONS: tuple[Option, ...] = (
    Option("default_system", "text", "LF's default_system override used in training", "TEXT"),
    Option("tool_format", "text", "LF's tool_format override used in training (e.g. qwen)", "FORMAT"),
    Option("enable_thinking", "bool_or_none", "LF's enable_thinking (reasoning templates); LF's default is true"),
    Option("preserve_thinking", "bool", "LF's preserve_thinking"),
    Option("mask_history", "bool", "LF's mask_history"),
)
assert tuple(o.name for o in TEMPLATE_OPTIONS) == tuple(f.name for f in fields(TemplateOptions))

#: The option names, in table order (record ``options`` keys, YAML keys, ``TemplateOptions`` fields).
OPTION_KEYS: tuple[str, ...] = tuple(o.name for o in TEMPLATE_OPTIONS)
#: LF's own keys read beside the options: the template name, and ``cutoff_len`` (recorded, not rendered).
TEMPLATE_KEY = Option("template", "text", "LF template name")
CUTOFF_KEY = Option("cutoff_len", "int", "LF's cutoff_len")
#: The serving context length written into the serve commands and the Modelfile: only when asked for
#: (YAML ``template_ext_serve_max_len``, CLI ``--max-model-len``). Training's ``cutoff_len`` only truncated
#: training samples; it is no limit of the model, so it is never used as one.
SERVE_MAX_LEN = Option("template_ext_serve_max_len", "int", "the context length to serve with", "N")
#: Every key a training YAML, the record or the command line may set, by name.
ALL_KEYS: dict[str, Option] = {o.name: o for o in (TEMPLATE_KEY, *TEMPLATE_OPTIONS, CUTOFF_KEY, SERVE_MAX_LEN)}


# -- this package's own keys (stripped from LF's arguments by the enable hook) ---------------------------

KEY_PREFIX = "template_ext_"
MODE_KEY = "template_ext_mode"
ENGINES_KEY = "template_ext_engines"
NATIVE_POLICY_KEY = "template_ext_native_policy"
NATIVE_KWARGS_KEY = "template_ext_native_kwargs"
#: ``slots`` (default: LF's own encoding, each slot piece on its own) or ``whole`` (the compiled template rendered
#: and tokenized whole, as engines do: docs/native-mode.md "Train as served")
TOKENIZE_KEY = "template_ext_tokenize"
#: ``template: native`` with a chosen chat template: a Jinja file, or ``lf:NAME`` (LF's template NAME, compiled)
CHAT_TEMPLATE_KEY = "template_ext_chat_template"
SERVE_MAX_LEN_KEY = SERVE_MAX_LEN.name
#: ``model`` (default): write only the sampling values the user set for LF's chat; ``lf``: LF chat's defaults too
#: (``model.generation``)
GENERATION_KEY = "template_ext_generation"
#: YAML key -> environment variable that stands in for it outside LF (tests, scripts); ``None``: YAML only.
EXTENSION_KEYS: dict[str, Optional[str]] = {
    MODE_KEY: None,
    ENGINES_KEY: None,
    NATIVE_POLICY_KEY: "LF_TEMPLATE_EXT_NATIVE_POLICY",
    NATIVE_KWARGS_KEY: "LF_TEMPLATE_EXT_NATIVE_KWARGS",
    TOKENIZE_KEY: "LF_TEMPLATE_EXT_TOKENIZE",
    CHAT_TEMPLATE_KEY: "LF_TEMPLATE_EXT_CHAT_TEMPLATE",
    SERVE_MAX_LEN_KEY: None,
    GENERATION_KEY: None,
}
MODES = ("fix", "keep-native")

#: The ``template_ext_*`` options of this process, as the enable hook took them from LF's arguments.
EXTENSION_OPTIONS: dict[str, Any] = {}


# -- THE resolution rule: given > trained > LF's default, with where each value came from ------------------

#: The provenance of a value nobody gave or recorded.
LF_DEFAULT = "LF default"
#: The keys the rule resolves: the template name and every option.
RESOLVED_KEYS: tuple[str, ...] = (TEMPLATE_KEY.name, *OPTION_KEYS)


class OptionValueError(BadInputError):
    """A value that does not parse (exit 2); ``source`` names where it was written (callers re-raise it
    with the file's path)."""

    def __init__(self, key: str, value: Any, source: str, reason: str) -> None:
        self.reason = f"invalid value {value!r} for {key} ({reason})"
        super().__init__(self.reason, path=source)
        self.key, self.value, self.source = key, value, source


@dataclass(frozen=True)
class Conflict:
    """A value the user gave that differs from what training used."""

    key: str
    given: Any
    given_source: str
    trained: Any
    trained_source: str

    def message(self) -> str:
        return (
            f"{self.key}={self.given!r} ({self.given_source}) differs from what training used "
            f"({self.key}={self.trained!r}, {self.trained_source}); serving will follow {self.given_source}, not training"
        )


@dataclass(frozen=True)
class Provenanced:
    """Resolved values (every key of ``ALL_KEYS`` that any layer set, and every option), each with its source."""

    values: dict[str, Any]
    sources: dict[str, str]
    conflicts: tuple[Conflict, ...] = ()

    @property
    def template(self) -> Optional[str]:
        return self.values.get(TEMPLATE_KEY.name)

    @property
    def options(self) -> TemplateOptions:
        return TemplateOptions(**{k: self.values[k] for k in OPTION_KEYS})

    def describe(self) -> dict[str, str]:
        """``{key: "value (source)"}`` for the template and every option: what reports and SERVING.md print."""
        out = {}
        for key in RESOLVED_KEYS:
            value = self.values.get(key)
            shown = "null" if value is None else (str(value).lower() if isinstance(value, bool) else repr(value))
            out[key] = f"{shown} ({self.sources.get(key, LF_DEFAULT)})"
        return out


Layer = tuple[str, Mapping[str, Any]]


def _parse(key: str, value: Any, source: str) -> Any:
    try:
        return ALL_KEYS[key].parse(value)
    except (TypeError, ValueError) as e:
        raise OptionValueError(key, value, source, str(e)) from None


def resolve_with_provenance(trained: "list[Layer] | tuple[Layer, ...]", given: "list[Layer] | tuple[Layer, ...]") -> Provenanced:
    """THE option rule (export hook, ``repair``, ``check``, ``emit``): a value the user gave wins (among
    ``given`` layers the later wins: a flag over ``--config``); a value the user did not give comes from what
    training used (among ``trained`` layers the earlier wins: our record, then LF's ``training_args.yaml``,
    then ``llamaboard_config.yaml``); only a value nobody gave or recorded takes LF's default. A given
    value that differs from the trained one is a :class:`Conflict` (the caller warns). Each layer is
    ``(source label, {key: value})`` with keys of :data:`ALL_KEYS`; other keys are ignored."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    trained_values: dict[str, tuple[Any, str]] = {}
    for source, layer in trained:
        for key, value in layer.items():
            if key in ALL_KEYS and key not in trained_values:
                trained_values[key] = (_parse(key, value, source), source)
    given_values: dict[str, tuple[Any, str]] = {}
    for source, layer in given:
        for key, value in layer.items():
            if key in ALL_KEYS:
                given_values[key] = (_parse(key, value, source), source)
    defaults = TemplateOptions()
    conflicts = []
    for key in (*RESOLVED_KEYS, *(k for k in ALL_KEYS if k not in RESOLVED_KEYS)):
        if key in given_values:
            values[key], sources[key] = given_values[key]
            if key in RESOLVED_KEYS:
                trained_value, trained_source = trained_values.get(key, (None, None))
                if key in trained_values and trained_value != values[key]:
                    conflicts.append(Conflict(key, values[key], sources[key], trained_value, str(trained_source)))
        elif key in trained_values:
            values[key], sources[key] = trained_values[key]
        elif key in OPTION_KEYS:
            values[key], sources[key] = getattr(defaults, key), LF_DEFAULT
    return Provenanced(values, sources, tuple(conflicts))
