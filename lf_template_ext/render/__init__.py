"""Engine sides: what a serving engine makes of a chat request (transformers for vLLM/SGLang,
Ollama's template execution re-created in Go, LMDeploy's own code, live servers).
"""
