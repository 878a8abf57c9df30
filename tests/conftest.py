"""No silent skips: a run fails when a test is skipped for a reason that tests/skips.toml does
not allow for this kind of run (--skips=local, the default, or --skips=server)."""

import tomllib
from pathlib import Path

import pytest

ALLOW_LIST = Path(__file__).with_name("skips.toml")
SKIPPED: list[tuple[str, str]] = []  # (test, reason) of every skip in this run


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skips",
        choices=["local", "server"],
        default="local",
        help="which allow-list of tests/skips.toml this run's skips must be on (default: local)",
    )


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        SKIPPED.append((report.nodeid, skip_reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        SKIPPED.append((report.nodeid, skip_reason(report)))


def unexpected_skips(config: pytest.Config) -> list[tuple[str, str]]:
    allowed = tomllib.loads(ALLOW_LIST.read_text())[config.getoption("skips")]
    return [(test, reason) for test, reason in SKIPPED if reason not in allowed]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if unexpected_skips(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    unexpected = unexpected_skips(config)
    if unexpected:
        terminalreporter.section("skips not on the allow-list", red=True)
        kind = config.getoption("skips")
        terminalreporter.line(f"tests/skips.toml [{kind}] does not allow these skips:")
        for test, reason in unexpected:
            terminalreporter.line(f"  {test}: {reason}")
