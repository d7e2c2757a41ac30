"""Before Qt starts on a Linux X11 desktop: are the libraries of Qt's xcb plugin there?

Without them Qt aborts with "Could not load the Qt platform plugin "xcb" ... even though
it was found", which names no package. ``missing_xcb_message`` loads each library the
plugin links (as ``ldd libqxcb.so`` lists them) and, when some are missing, returns one
line naming the Debian/Ubuntu and Fedora packages to install. No Qt import here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# soname -> (Debian/Ubuntu package, Fedora package)
XCB_LIBRARIES = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
}


def loadable(soname: str) -> bool:
    """Whether the dynamic linker finds and loads ``soname``."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt is about to pick its xcb plugin: Linux, an X display, and no other
    platform asked for (a Wayland session without QT_QPA_PLATFORM picks Wayland)."""
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if not platform.startswith("linux") or not environ.get("DISPLAY"):
        return False
    if chosen:
        return chosen.split(":")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def missing_xcb_message(environ: Mapping[str, str] | None = None,
                        find: Callable[[str], bool] | None = None,
                        platform: str | None = None) -> str | None:
    """One line naming the packages to install, or None when nothing is missing
    (``find``: whether a library loads; ``loadable`` by default)."""
    if not uses_xcb(os.environ if environ is None else environ, platform or sys.platform):
        return None
    find = find or loadable
    missing = [name for name in XCB_LIBRARIES if not find(name)]
    if not missing:
        return None
    debian = " ".join(dict.fromkeys(XCB_LIBRARIES[name][0] for name in missing))
    fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[name][1] for name in missing))
    return (f"Unprompt cannot open a window: Qt's X11 (xcb) plugin needs "
            f"{', '.join(missing)}. Install them: sudo apt install {debian} "
            f"(Debian/Ubuntu) or sudo dnf install {fedora} (Fedora).")
