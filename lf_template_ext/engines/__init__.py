"""Engine-specific renderings of an LF template (pure: spec in, engine file content out)."""
