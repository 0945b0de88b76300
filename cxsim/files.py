"""Writing output files so that no reader ever sees a torn one."""

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, write) -> Path:
    """Call write(tmp) on a hidden temp file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
