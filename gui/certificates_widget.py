"""The Certificates screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class CertificatesWidget(PlaceholderScreen):
    title = "Certificates"
    description = ("Export signed PDF erasure certificates for executed requests and verify "
                   "certificates you receive.")
