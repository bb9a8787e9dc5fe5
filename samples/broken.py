"""A small module with problems ruff can fix: try `ace fix samples/broken.py`."""

import os
import sys
from typing import List


def mean(values: List[float]) -> float:
    if values == None:
        return 0.0
    total = 0
    for v in values:
        total += v
    return total / len(values)


def greet(name):
    message = f"hello"
    return "Hello, " + name
