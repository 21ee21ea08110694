"""Layered and multi-area networks whose width and depth grow (Miconi's proposed extension)."""
