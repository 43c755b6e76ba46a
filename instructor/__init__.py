"""Instructor tools: the CLI over nbgrader (``python -m instructor --help``)."""
