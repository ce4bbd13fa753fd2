"""Encoder + GlobalPointer heads."""
