"""Fake vendor servers on 127.0.0.1: each vendor's exact wire format, with fault injection."""
