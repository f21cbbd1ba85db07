"""The data every layer shares: template specs, options, messages, the probe corpus, stop-id and
tool-format rules. Standard library only, no file I/O, no LF (docs/development.md, "Layers").
"""
