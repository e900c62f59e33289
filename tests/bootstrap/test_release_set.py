"""Can the OpenTelemetry pin move? Resolve the newest whole release set beside ours and say so.

The OpenTelemetry family is pinned to one release set (pyproject.toml). This asks
the registry (``pip install --dry-run``, nothing installed) for the newest set
that installs together with our other dependencies and prints the verdict: the
pin is the newest set, or it can move to X, or the newest SDK has no matching
contrib release yet. A newer set never fails the test; a check that cannot run
(no answer, an answer that cannot be read) does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = [pytest.mark.registry, pytest.mark.slow]


def _dependencies() -> list[Requirement]:
    """otel-trading's runtime requirements as installed (pyproject.toml), extras left out."""
    return [r for r in map(Requirement, requires("otel-trading") or ()) if r.marker is None]


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=120)


def _resolve(requirements: list[str]) -> tuple[dict[str, str] | None, str]:
    """Versions pip would install for ``requirements`` (None and pip's reason when they conflict)."""
    proc = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", *requirements)
    if proc.returncode != 0:
        assert "ResolutionImpossible" in proc.stderr or "conflict" in proc.stderr.lower(), proc.stderr[-2000:]
        conflict = [line.removeprefix("ERROR: ").strip() for line in proc.stderr.splitlines() if "Cannot install" in line]
        return None, "; ".join(conflict[:1])
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}, ""


def _newest(name: str) -> Version:
    proc = _pip("index", "versions", name)
    match = re.search(rf"^{re.escape(name)} \(([^)]+)\)", proc.stdout, re.M)
    assert match, proc.stdout + proc.stderr
    return Version(match.group(1))


def test_newest_opentelemetry_release_set_beside_ours(capsys):
    deps = _dependencies()
    otel = [d for d in deps if d.name.startswith("opentelemetry-")]
    pinned = {d.name: next(iter(d.specifier)).version for d in otel}
    others = [str(d) for d in deps if not d.name.startswith("opentelemetry-")]

    newest_sdk = _newest("opentelemetry-sdk")
    resolved, _ = _resolve([d.name for d in otel] + others)  # every OpenTelemetry package unpinned
    assert resolved is not None and all(d.name in resolved for d in otel), resolved
    core, contrib = resolved["opentelemetry-sdk"], resolved["opentelemetry-instrumentation"]
    assert Version(core) >= Version(pinned["opentelemetry-sdk"])  # our own pin resolves, so the newest cannot be older

    if Version(core) == Version(pinned["opentelemetry-sdk"]) and newest_sdk == Version(core):
        verdict = f"the pin {core}/{contrib} is the newest OpenTelemetry release set"
    elif Version(core) > Version(pinned["opentelemetry-sdk"]):
        verdict = f"the pin can move: {core}/{contrib} installs with every dependency (pinned {pinned['opentelemetry-sdk']}/{pinned['opentelemetry-instrumentation']})"
    else:
        _, why = _resolve([f"opentelemetry-sdk=={newest_sdk}", *(d.name for d in otel if d.name != "opentelemetry-sdk"), *others])
        verdict = (f"the pin {core}/{contrib} stays: the newest SDK {newest_sdk} has no whole release set yet"
                   + (f" ({why})" if why else ""))
    with capsys.disabled():
        print(f"\nOpenTelemetry release set: {verdict}")
