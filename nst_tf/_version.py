"""The package version, in a module of its own so that modules can record it without importing
``nst_tf/__init__`` (which imports their public names back: an import cycle)."""

__version__ = "0.1.0"
