"""What the commands and the LF hook do, composed from the layers below: repair, check, SERVING.md
and the engine registry.
"""
