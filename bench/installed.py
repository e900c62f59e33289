"""otel-trading installed the way a user installs it, for the start-up items.

Start-up time depends on what the venv holds and how the package is installed, not only on
our code: the project's dev venv adds the test extras (instrumentations of requests and aiohttp,
ccxt, ...), which ``opentelemetry-instrument`` loads at every start, and its editable install
finds ``otel_trading`` through an import hook, with no bytecode compiled when
PYTHONDONTWRITEBYTECODE is set. ``bench/.venv-ours`` holds ``pip install <repo>`` only (a
regular wheel install with its runtime dependencies, bytecode compiled by pip), the same way
``bench/.venv-reference`` holds the stock distro; it is reinstalled when the package's sources change,
and created afresh when the project metadata changes (a dependency dropped must leave the venv too).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "bench", ".venv-ours")
_STAMP = os.path.join(VENV, "bench-sources.txt")


def python() -> str:
    return os.path.join(VENV, "bin", "python")


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path.exists():
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _sources_digest() -> str:
    """What the install is made from: the project metadata (first line: its dependencies), then the
    package's files and the start-up .pth."""
    root = Path(ROOT)
    files = sorted(p for p in (root / "otel_trading").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return _digest([root / "pyproject.toml", root / "setup.py"]) + "\n" + _digest([root / "otel_trading_early.pth", *files])


def _read_stamp() -> str | None:
    try:
        with open(_STAMP) as fh:
            return fh.read()
    except OSError:
        return None


def ensure(create: bool) -> str | None:
    """The installed venv's python, (re)installing when ``create``; None (and why, on stderr) when not available."""
    digest = _sources_digest()
    if _read_stamp() == digest and os.path.exists(python()):
        return python()
    if not create:
        return None
    stamp = _read_stamp()
    fresh = not os.path.exists(python()) or stamp is None or stamp.split("\n")[0] != digest.split("\n")[0]
    print(f"  {'creating' if fresh else 'updating'} {os.path.relpath(VENV, ROOT)} (pip install of this repository)", file=sys.stderr, flush=True)
    try:
        if fresh:
            subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True, timeout=120)
            args = [ROOT]
        else:  # dependencies are in place: only the package itself changed
            args = ["--no-deps", "--force-reinstall", ROOT]
        subprocess.run([python(), "-m", "pip", "install", "-q", *args], check=True, timeout=600, capture_output=True, cwd=ROOT)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"  {os.path.relpath(VENV, ROOT)} could not be installed: {exc} {detail.decode(errors='replace')[-500:]}", file=sys.stderr, flush=True)
        return None
    with open(_STAMP, "w") as fh:
        fh.write(digest)
    return python()
