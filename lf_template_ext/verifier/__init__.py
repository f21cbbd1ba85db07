"""The proof: LF's reference ids (``reference``), comparison and report (``report``), the probe
verifier (``probe``) and the dataset checker (``dataset``).
"""
