"""lf-template-ext: serve LLaMA-Factory fine-tunes in exactly the prompt format they were trained on.

Importing this package imports neither torch nor LLaMA-Factory (docs/contracts.md); the heavy
imports happen inside the functions that need them.
"""

from ._version import __version__
from .api import compile_jinja, verify
from .errors import BadInputError, LFTemplateExtError, UnsupportedLFVersionError, UnsupportedTemplateError
from .model.media_args import MediaArgs
from .model.options import TemplateOptions
from .modeldir.media import resize_like_training

__all__ = [
    "__version__",
    "compile_jinja",
    "verify",
    "TemplateOptions",
    "MediaArgs",
    "resize_like_training",
    "BadInputError",
    "LFTemplateExtError",
    "UnsupportedLFVersionError",
    "UnsupportedTemplateError",
]
