"""Benchmark cargohold against CNCF Distribution (Debian's docker-registry) on loopback.

    python bench/run.py [--quick] [--runs N] [--scaleout] [--only cargohold,scaleout,...]

See bench/README.md. The work is in bench/core.py; this launcher only makes sure it runs
under a Python that has httpx (re-running itself with the project's .venv if needed).
"""

import importlib.util
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENV = BENCH.parent / ".venv"
VENV_PY = VENV / "bin" / "python"


def main() -> int:
    if importlib.util.find_spec("httpx") is None:
        if VENV_PY.exists() and Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
        sys.exit("httpx is required: use the project's .venv (pip install -e '.[dev]')")
    sys.path.insert(0, str(BENCH))
    import core

    return core.main()


if __name__ == "__main__":
    sys.exit(main())
