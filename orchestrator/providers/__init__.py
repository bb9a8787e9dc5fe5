"""Providers: one module per wire protocol, all behind the Provider protocol of `base.py`."""
