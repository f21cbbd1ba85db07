"""What runs inside LF's process when ``LF_TEMPLATE_EXT=1``: the import hook that patches LF's
modules as they load, export/training post-processing, native mode's batch processors.

The top layer below the CLI: it calls workflows (the export hook repairs ``export_dir``).
"""
