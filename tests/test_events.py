"""Security events nobody can lose, and nobody can forge.

The attack is played for real (attacker gets an ID, plants it, the victim logs
in, the attacker replays it) after the application configured logging the way
real apps do — ``logging.config.fileConfig`` (alembic's ``env.py``) and
``dictConfig``, both with ``disable_existing_loggers=True`` — and the blocked
fixation must still reach the app's handlers, as a logfmt line whose fields a
client-chosen path cannot forge, and as ``extra`` fields for JSON formatters.
"""

from __future__ import annotations

import io
import logging
import logging.config
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from fixguard import Event
from fixguard.events import EventSink, Line, log_fields

from .apps import VulnerableApp, guard
from .attack import fixation

#: One logfmt field: key=value or key="quoted \"value\"".
FIELD = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse_logfmt(line: str) -> tuple[str, dict[str, str]]:
    """The event kind (first token) and its fields; a key seen twice is an error (a forgery)."""
    kind, _, rest = line.partition(" ")
    fields: dict[str, str] = {}
    consumed = 0
    for match in FIELD.finditer(rest):
        assert rest[consumed : match.start()].strip() == "", f"unparsed text in {line!r}"
        consumed = match.end()
        key, value = match.group(1), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        assert key not in fields, f"field {key} appears twice in {line!r}"
        fields[key] = value
    assert rest[consumed:].strip() == "", f"unparsed text in {line!r}"
    return kind, fields


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """logging.config changes process-wide state: put every logger back as it was."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    loggers = {
        name: (lg.disabled, lg.level, list(lg.handlers), lg.propagate)
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, (disabled, level, handlers, propagate) in loggers.items():
        lg = logging.getLogger(name)
        lg.disabled, lg.propagate = disabled, propagate
        lg.setLevel(level)
        lg.handlers[:] = handlers


def play_fixation(path: str = "/profile", remote_addr: str = "203.0.113.9") -> tuple[int, str]:
    """Plant an ID, the victim logs in, replay it on ``path``: the status and the ID's fingerprint."""
    seen: list[Event] = []
    wrapped = guard(VulnerableApp(), on_event=seen.append)
    outcome = fixation(
        wrapped,
        lambda victim: victim.post("/login", {"user": "alice", "password": "secret"}),
        replay_path=quote(path, safe="/"),
        attacker_environ={"REMOTE_ADDR": remote_addr},
    )
    assert outcome.victim_after.text == "user=alice"
    blocked = [e for e in seen if e.kind == "fixation_blocked"]
    assert len(blocked) == 1
    return outcome.replay.status_int, blocked[0].fingerprint or ""


# -- survives logging.config ----------------------------------------------------------------


def test_file_config_disabling_existing_loggers_still_logs_a_blocked_fixation(
    tmp_path: Path, restore_logging: None
) -> None:
    logfile = tmp_path / "app.log"
    ini = tmp_path / "logging.ini"  # the shape of alembic's env.py logging section
    ini.write_text(
        "[loggers]\nkeys = root,sqlalchemy\n\n[handlers]\nkeys = file\n\n[formatters]\nkeys = plain\n\n"
        "[logger_root]\nlevel = WARNING\nhandlers = file\n\n"
        "[logger_sqlalchemy]\nlevel = WARNING\nhandlers =\nqualname = sqlalchemy.engine\n\n"
        f"[handler_file]\nclass = FileHandler\nargs = ({str(logfile)!r},)\nformatter = plain\n\n"
        "[formatter_plain]\nformat = %(levelname)s %(name)s %(message)s\n"
    )
    logging.getLogger("fixguard")  # exists before the configuration, as in any app that imported fixguard
    logging.config.fileConfig(ini)  # disable_existing_loggers=True is fileConfig's default
    assert logging.getLogger("fixguard").disabled  # what fileConfig did

    status, fingerprint = play_fixation()
    assert status == 401
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [line for line in logfile.read_text().splitlines() if "fixation_blocked" in line]
    assert lines, logfile.read_text()
    kind, fields = parse_logfmt(lines[-1].removeprefix("WARNING fixguard "))
    assert kind == "fixation_blocked" and fields["id"] == fingerprint and fields["reason"] == "login"


def test_dict_config_disabling_existing_loggers_still_logs_a_blocked_fixation(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": True,
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": stream}},
            "root": {"level": "INFO", "handlers": ["out"]},
        }
    )
    status, _ = play_fixation()
    assert status == 401
    assert "fixation_blocked" in stream.getvalue()
    assert "rotation" in stream.getvalue()  # INFO events too, at the level the app chose


def test_the_level_still_quietens_fixguard(restore_logging: None) -> None:
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": stream}},
            "root": {"level": "INFO", "handlers": ["out"]},
            "loggers": {"fixguard": {"level": "CRITICAL"}},
        }
    )
    assert play_fixation()[0] == 401
    assert stream.getvalue() == ""


def test_the_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("fixguard").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


# -- fields as extra ------------------------------------------------------------------------


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    keep = Keep()
    logger = logging.getLogger("fixguard")
    old_level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    yield keep.records
    logger.removeHandler(keep)
    logger.setLevel(old_level)


def test_each_field_is_an_extra_attribute_for_json_formatters(records: list[logging.LogRecord]) -> None:
    status, fingerprint = play_fixation(remote_addr="198.51.100.7")
    assert status == 401
    (record,) = [r for r in records if getattr(r, "kind", None) == "fixation_blocked"]
    fields = record.__dict__
    assert fields["fingerprint"] == fingerprint and fields["method"] == "GET"
    assert fields["path"] == "/profile" and fields["remote_addr"] == "198.51.100.7"
    assert fields["reason"] == "login" and fields["action"] == "reject" and fields["time"] > 0
    assert record.levelno == logging.WARNING and record.name == "fixguard"


def test_a_field_named_like_a_log_record_attribute_is_prefixed(records: list[logging.LogRecord]) -> None:
    event = Event("bad_cookie", None, "GET", "/", "", {"name": "x", "message": "y", "reason": "z"})
    assert log_fields(event)["fixguard_name"] == "x" and log_fields(event)["fixguard_message"] == "y"
    EventSink(None).emit(event)  # logging would raise on a clash: it must not
    assert records[-1].__dict__["reason"] == "z" and records[-1].name == "fixguard"


# -- values cannot forge fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/x id=AAAAAAAAAAAA from=10.0.0.1",
        '/x" id="AAAA" from="10.0.0.1',
        '/x\\" id=AAAA',
        "/x\nfixation_blocked id=AAAA from=10.0.0.1",
        "/x\r\x1b[2K from=10.0.0.1",
        "/" + "a=b " * 200,
    ],
)
def test_a_hostile_path_cannot_forge_a_field_or_a_line(path: str, records: list[logging.LogRecord]) -> None:
    status, fingerprint = play_fixation(path=path)
    assert status == 401
    (record,) = [r for r in records if getattr(r, "kind", None) == "fixation_blocked"]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    kind, fields = parse_logfmt(line)
    assert kind == "fixation_blocked"
    assert fields["id"] == fingerprint and fields["from"] == "203.0.113.9"
    assert set(fields) == {"id", "method", "path", "from", "reason", "action", "cookie"}
    if len(path) < 200 and path.isprintable():
        assert fields["path"] == path  # quoted and escaped, never cut or changed


def test_the_line_is_built_only_when_a_handler_formats_it() -> None:
    built: list[str] = []

    class Spy(Line):
        def __str__(self) -> str:
            built.append("x")
            return super().__str__()

    logging.getLogger("fixguard").debug("%s", Spy(Event("x")))  # below the level: never formatted
    assert built == []


def test_plain_values_stay_bare_and_the_rest_is_quoted() -> None:
    line = str(Line(Event("rotation", "kZ03ZTwWBcYQ", "POST", "/login", "203.0.113.9", {"signal": "login"})))
    assert line == "rotation id=kZ03ZTwWBcYQ method=POST path=/login from=203.0.113.9 signal=login"
    quoted = str(Line(Event("expired", None, "", "", "", {"reason": 'a "b"'})))
    assert quoted == 'expired id=- method="" path="" from=- reason="a \\"b\\""'
