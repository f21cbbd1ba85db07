"""The adapter to LLaMA-Factory: the only code that imports ``llamafactory`` (``compat``: versions,
preparing templates on copies, snapshots, LF's reference encoding; ``datasets``: LF's dataset formats;
``native_template``: the ``native`` Template class; ``v1``: LF's v1 path, ``USE_V1=1``, and its renderers). ``plugin`` runs inside LF's own process.
"""
