"""docs/protocol.md is the contract: every frame type, error code and close code is in it."""

import re
from pathlib import Path

from realtime import registry
from realtime.errors import CloseCode, ErrorCode

PROTOCOL = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()
SECTION_TITLES = set(re.findall(r"^#{2,4} `([a-z_.]+)`", PROTOCOL, flags=re.MULTILINE))


def test_every_registered_frame_type_has_a_section():
    missing = [t for t in registry.registered_types() if t not in SECTION_TITLES]
    assert registry.registered_types(), "no handlers registered: the apps did not load"
    assert missing == []


def test_built_in_frames_have_sections():
    assert {"ping", "auth", "welcome", "chat.message"} <= SECTION_TITLES


def test_every_error_code_is_in_the_error_table():
    table_codes = set(re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL, flags=re.MULTILINE))
    assert {code.value for code in ErrorCode} <= table_codes


def test_every_close_code_is_in_the_close_table():
    table_codes = {int(c) for c in re.findall(r"^\| (\d{4}) \|", PROTOCOL, flags=re.MULTILINE)}
    assert {int(code) for code in CloseCode} <= table_codes
