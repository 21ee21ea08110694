"""Command line of neurograph (imported as ``neurograph_cli``)."""
