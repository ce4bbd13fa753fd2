"""Data: DuEE JSONL in and out, tokenizers, alignment, labels and batches."""
