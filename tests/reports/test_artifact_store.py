"""The certificate says what a purge covers on the declared artifact store
(docs/artifact-stores.md): never more than overwriting and deleting the workspace's files
can show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli.app import main
from reports.manifest import build_manifest
from reports.pdf_certificate import render_certificate_pdf
from storage.artifact_store import KINDS
from storage.errors import UnpromptError
from storage.settings import get_setting, set_setting
from storage.workspace import Workspace
from tests.reports.pdftext import pdf_text
from tests.reports.sample import sample_facts

# per kind: what the certificate must say it did, and what it must name as not covered
WORDING = {
    "local": ("every earlier stored copy of them in the workspace was overwritten and deleted",
              "backups and copies made outside the product"),
    "network": ("overwritten and deleted in the workspace's live files on the network "
                "filesystem", "the file server's snapshots, replicas and backups, and what "
                "other clients still hold in their caches"),
    "cow": ("every earlier stored copy of them was deleted from the workspace's live files",
            "snapshots and reflinked copies: on this store an overwrite writes new blocks"),
    "object-versioned": ("every earlier stored copy of them was deleted from the workspace's "
                         "live files", "earlier object versions: with versioning an "
                         "overwrite adds a version and a delete adds a marker"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_certificate_says_what_the_purge_covers_on_each_store(kind: str) -> None:
    text = _statement_and_purge_section(kind)
    did, not_covered = WORDING[kind]
    assert did in text
    assert f"(setting artifact_store: {kind})" in text
    assert f"copies outside the product's control are not covered: {not_covered}" in text
    overwrote = "1 stored artifact that held the erased parameters was overwritten and deleted"
    assert (overwrote in text) == (kind in ("local", "network"))  # an overwrite replaces
    # the earlier bytes only where the store does not keep them


def test_the_rendered_certificate_carries_the_store_wording() -> None:
    facts = sample_facts()
    facts["purge"]["store"] = "object-versioned"
    text = pdf_text(render_certificate_pdf(build_manifest(facts), None))
    assert WORDING["object-versioned"][0] in text and WORDING["object-versioned"][1] in text
    facts["purge"].pop("store")  # issued before the store was recorded: read as local
    assert WORDING["local"][0] in _statement_and_purge_section(None)


def _statement_and_purge_section(kind: str | None) -> str:
    """The title page's statement and the purge section's text, without a render."""
    from reports.pdf_certificate import _statement
    from reports.pdf_sections import purge_section

    facts = sample_facts()
    if kind is not None:
        facts["purge"]["store"] = kind
    manifest = build_manifest(facts)
    parts = [_statement(manifest)] + [f.getPlainText() for f in purge_section(manifest)
                                      if hasattr(f, "getPlainText")]
    return " ".join(" ".join(parts).split())


def test_the_store_kind_is_a_setting_checked_and_logged(executed_root: Path,
                                                        tmp_path: Path) -> None:
    from reports.certificate_facts import gather

    root = tmp_path / "ws"
    shutil.copytree(executed_root, root)
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            assert get_setting(session, "artifact_store") == "local"
            with pytest.raises(UnpromptError, match="unknown artifact store kind 'tape': use "
                               "local, network, cow or object-versioned"):
                set_setting(session, "artifact_store", "tape", "alice")
            set_setting(session, "artifact_store", "cow", "alice")
        with ws.sessions() as session:
            facts, _ = gather(session, 1, "UC-20261207-0000000001")
        assert facts["purge"]["store"] == "cow"
        assert build_manifest(facts)["purge"]["store"] == "cow"
    finally:
        ws.close()


def test_the_cli_sets_the_store_kind_and_refuses_an_unknown_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "settings", "--artifact-store", "network", "--json"]) == 0
    assert '"artifact_store": "network"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["--workspace", ws, "settings", "--artifact-store", "tape"])
    assert refused.value.code == 2
    assert "invalid choice: 'tape'" in capsys.readouterr().err
