"""Authoring tools for the source notebooks (``python -m authoring check|sync``)."""
