"""What a purge can promise on the workspace's artifact store (docs/artifact-stores.md).

The workspace setting ``artifact_store`` declares the kind of filesystem the workspace
folder lives on. A purge does the same everywhere (overwrite the file, fsync, delete it,
keep a tombstone; ``storage.artifacts``) and the residual scan reads the files a listing
of the workspace shows. What that leaves elsewhere depends on the store, and a
certificate says what the purge covers on the declared kind, never more.
"""

from __future__ import annotations

from storage.errors import UnpromptError

LOCAL, NETWORK, COW, OBJECT_VERSIONED = "local", "network", "cow", "object-versioned"
KINDS = (LOCAL, NETWORK, COW, OBJECT_VERSIONED)

NAMES = {
    LOCAL: "a local filesystem",
    NETWORK: "a network filesystem (NFS, SMB)",
    COW: "a copy-on-write filesystem (btrfs, ZFS, reflinks)",
    OBJECT_VERSIONED: "an object store with versioning, mounted as a folder",
}

# What the purge of a file leaves outside the product's control, per kind.
NOT_COVERED = {
    LOCAL: "backups and copies made outside the product, and blocks the disk itself "
           "keeps after an overwrite (SSD wear levelling)",
    NETWORK: "the file server's snapshots, replicas and backups, and what other clients "
             "still hold in their caches",
    COW: "snapshots and reflinked copies: on this store an overwrite writes new blocks, so "
         "the earlier bytes stay wherever a snapshot or a reflink holds them",
    OBJECT_VERSIONED: "earlier object versions: with versioning an overwrite adds a version "
                      "and a delete adds a marker, so the earlier bytes stay until a "
                      "lifecycle rule or an administrator removes them (retention may forbid "
                      "it)",
}


def check_kind(value: object) -> str:
    """``value`` if it names a store kind; else one clear UnpromptError."""
    if value not in KINDS:
        raise UnpromptError(f"unknown artifact store kind {value!r}: use "
                            f"{', '.join(KINDS[:-1])} or {KINDS[-1]}")
    return str(value)


def overwrites(kind: str) -> bool:
    """Whether overwriting a file replaces its earlier bytes in the live file system."""
    return kind in (LOCAL, NETWORK)


def purge_clause(kind: str | None) -> str:
    """What a complete purge did, as a clause of the certificate's statement."""
    kind = kind or LOCAL
    if kind == LOCAL:
        return "every earlier stored copy of them in the workspace was overwritten and deleted"
    if kind == NETWORK:
        return ("every earlier stored copy of them was overwritten and deleted in the "
                "workspace's live files on the network filesystem")
    return "every earlier stored copy of them was deleted from the workspace's live files"


def purge_scope(kind: str | None) -> str:
    """The certificate's sentence on what the purge covers and what it does not."""
    kind = kind or LOCAL
    return (f"The workspace's artifact store is declared {NAMES[kind]} (setting "
            f"artifact_store: {kind}). The purge and the residual scan cover the workspace's "
            f"live files; copies outside the product's control are not covered: "
            f"{NOT_COVERED[kind]}.")
