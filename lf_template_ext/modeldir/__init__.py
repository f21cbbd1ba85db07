"""Model dirs on disk: reading their files and tokenizer, the train-time record, GGUF files, and
every write (atomic, journaled with a backup, one writer per dir, restorable).
"""
