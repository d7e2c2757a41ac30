"""Start-up on a Linux desktop without the X libraries Qt's xcb plugin needs (issue 22)."""

from __future__ import annotations

import pytest

import gui.xcb_check
from gui.xcb_check import XCB_LIBRARIES, missing_xcb_message, uses_xcb

X11 = {"DISPLAY": ":0"}
ABSENT = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-randr.so.0"}


def _fake_find(name: str) -> bool:
    return name not in ABSENT


def test_missing_libraries_are_named_with_their_packages() -> None:
    message = missing_xcb_message(X11, _fake_find, "linux")
    assert message == (
        "Unprompt cannot open a window: Qt's X11 (xcb) plugin needs libxcb-icccm.so.4, "
        "libxcb-keysyms.so.1, libxcb-randr.so.0. Install them: sudo apt install "
        "libxcb-icccm4 libxcb-keysyms1 libxcb-randr0 (Debian/Ubuntu) or sudo dnf install "
        "xcb-util-wm xcb-util-keysyms libxcb (Fedora).")
    assert "\n" not in message


def test_nothing_is_said_when_every_library_loads() -> None:
    assert missing_xcb_message(X11, lambda _name: True, "linux") is None


@pytest.mark.parametrize(("environ", "platform"), [
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux"),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux"),
    ({}, "linux"),
    ({"DISPLAY": ":0"}, "darwin"),
])
def test_only_a_linux_x11_start_is_checked(environ: dict, platform: str) -> None:
    looked: list[str] = []
    assert missing_xcb_message(environ, lambda n: looked.append(n) or False, platform) is None
    assert looked == [] and not uses_xcb(environ, platform)


def test_an_explicit_xcb_platform_is_checked() -> None:
    environ = {"DISPLAY": ":1", "WAYLAND_DISPLAY": "w", "QT_QPA_PLATFORM": "xcb"}
    assert uses_xcb(environ, "linux")


def test_every_library_has_both_package_names() -> None:
    assert all(len(names) == 2 and all(names) for names in XCB_LIBRARIES.values())


def test_run_gui_stops_with_one_line_before_qt_starts(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    from gui.app import run_gui

    monkeypatch.setattr(gui.xcb_check.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(gui.xcb_check, "loadable", _fake_find)
    assert run_gui() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sudo apt install libxcb-icccm4" in err
