"""Shared data sources. A data SRC is a file or folder, a named embedded set, or ``hf:org/name/path``."""
