"""What differs between the Pythons and systems ACE runs on, decided once: `tomllib` (the standard
library's from Python 3.11, the `tomli` backport before) and whether a process is still alive."""

from __future__ import annotations

import os
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["pid_alive", "tomllib"]


def pid_alive(pid: int) -> bool:
    """Is a process with this id running (as any user)? Signal 0 checks without sending one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except (OverflowError, ValueError):  # not a pid at all
        return False
    return True
