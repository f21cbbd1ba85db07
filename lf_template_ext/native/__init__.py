"""``template: native``: train and chat with the model's own chat template, exact labels.

Free of LF: what it needs from LF is handed in (``native.mode.LFHelpers``) by ``lf/``.
"""
