"""ACE's language server (pygls) and command line."""

__version__ = "0.1.0"
