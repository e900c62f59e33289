"""``process.command_args`` / ``process.command_line``: the value after a secret-looking option is masked."""

from __future__ import annotations

import pytest
from support import otlp_env, run_python

from otel_trading.redaction import MASK, Redactor

TOKEN = "Zq7Kp2Rt9Wx4Ym6Nv3"


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["bot.py", "--api-key", TOKEN, "--symbol", "AAPL"], ["bot.py", "--api-key", MASK, "--symbol", "AAPL"]),
        (["bot.py", f"--password={TOKEN}", "-v"], ["bot.py", f"--password={MASK}", "-v"]),
        (["bot.py", "-p", TOKEN, f"-p{TOKEN}", f"-p={TOKEN}"], ["bot.py", "-p", MASK, f"-p{MASK}", f"-p={MASK}"]),
        (["bot.py", "--db-secret", TOKEN, "--key", TOKEN, "--session-key", TOKEN], ["bot.py", "--db-secret", MASK, "--key", MASK, "--session-key", MASK]),
        (["bot.py", "--token", "--dry-run", "--qty", "5"], ["bot.py", "--token", "--dry-run", "--qty", "5"]),
        (["bot.py", "--db", f"postgres://svc:{TOKEN}@db:5432/orders"], ["bot.py", "--db", f"postgres://svc:{MASK}@db:5432/orders"]),
        (["python", "-m", "bot", "--venue", "binance", "--pin"], ["python", "-m", "bot", "--venue", "binance", "--pin"]),
    ],
)
def test_the_value_after_a_secret_option_is_masked_other_arguments_are_kept(argv, expected):
    assert Redactor().redact_argv(argv) == expected


DETECTOR = """
from opentelemetry.sdk.resources import ProcessResourceDetector


class WithArguments(ProcessResourceDetector):
    def __init__(self):
        super().__init__(include_command_args=True)
"""
APP = """
from opentelemetry import trace
with trace.get_tracer("cli").start_as_current_span("started"):
    pass
import multiprocessing

def child():  # the SDK re-runs the process-dependent detectors in a forked child
    with trace.get_tracer("cli").start_as_current_span("in child"):
        pass

worker = multiprocessing.get_context("fork").Process(target=child)
worker.start()
worker.join()
print("APP-OK")
"""


@pytest.mark.slow
def test_a_detector_that_adds_the_command_line_exports_it_masked_also_in_a_forked_child(otlp, tmp_path):
    # a resource detector that includes the command line (the SDK's process detector with
    # include_command_args=True), installed as an entry point as any detector package is
    (tmp_path / "argv_detector.py").write_text(DETECTOR)
    info = tmp_path / "argv_detector-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: argv-detector\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[opentelemetry_resource_detector]\nargv = argv_detector:WithArguments\n")
    env = otlp_env(otlp, PYTHONPATH=str(tmp_path), OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="argv", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    args = ("--api-key", TOKEN, f"--password={TOKEN}", "-p", TOKEN, "--symbol", "AAPL")
    result = run_python(APP, env, args=args)
    assert result.returncode == 0 and "APP-OK" in result.stdout, result.stderr
    spans = otlp.wait_for(lambda r: (s := [s for s in r.spans() if s.name in ("started", "in child")]) and len(s) == 2 and s)
    for span in spans:
        assert list(span.resource["process.command_args"])[-7:] == ["--api-key", MASK, f"--password={MASK}", "-p", MASK, "--symbol", "AAPL"]
        assert span.resource["process.command_line"].endswith(f"--api-key {MASK} --password={MASK} -p {MASK} --symbol AAPL")
    assert len({span.resource["process.pid"] for span in spans}) == 2
    assert not any(TOKEN.encode() in request.SerializeToString() for request in otlp.requests["traces"])
