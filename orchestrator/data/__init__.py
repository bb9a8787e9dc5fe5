"""Data files: the model registry and the routing table."""
