"""The adapter to LLaMA-Factory: the only code that imports ``llamafactory`` (``compat``: versions,
preparing templates on copies, snapshots, LF's reference encoding; ``datasets``: LF's dataset formats;
``native_template``: the ``native`` Template class). ``plugin`` runs inside LF's own process.
"""
