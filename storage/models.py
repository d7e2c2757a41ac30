"""The registry schema (docs/design.md section 3) as SQLAlchemy 2.x declarative models.

Timestamps are stored as naive UTC and handed back as aware UTC (``UTCDateTime``).
The schema itself is created by the Alembic migrations in ``storage/migrations``;
these classes must stay in step with them (a test compares the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # image / llm / backbone
    backbone: Mapped[str] = mapped_column(String(200), default="")
    training_mode: Mapped[str] = mapped_column(String(20), default="")
    dataset_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.number"
    )
    classes: Mapped[list[ClassEntry]] = relationship(
        back_populates="model", order_by="ClassEntry.label_index"
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    number: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    shared_artifact: Mapped[str] = mapped_column(String(64), default="")
    class_artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # label -> sha256
    status: Mapped[str] = mapped_column(String(20), default="live")  # live / superseded / purged
    erasure_kind: Mapped[str] = mapped_column(String(20), default="")  # storage.erasure_kinds
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    model: Mapped[Model] = relationship(back_populates="versions")


class ClassEntry(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("model_id", "label_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    label_index: Mapped[int] = mapped_column(Integer)
    display_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="learned")  # learned / forgotten
    forgotten_in_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("erasure_requests.id"))
    model: Mapped[Model] = relationship(back_populates="classes")


class ForgetRule(Base):
    __tablename__ = "forget_rules"
    __table_args__ = (UniqueConstraint("model_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[dict[str, Any]] = mapped_column(default=dict)  # forget / retain prompts
    classifier_artifact: Mapped[str] = mapped_column(String(64), default="")
    threshold: Mapped[float] = mapped_column(Float, default=0.5)
    corruption: Mapped[str] = mapped_column(String(50), default="gaussian_first_n")
    corruption_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sigma: Mapped[float] = mapped_column(Float, default=0.0)
    calibration: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trace: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active / disabled
    request_id: Mapped[int | None] = mapped_column(ForeignKey("erasure_requests.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # +1 per retrain
    updated_at: Mapped[dt.datetime | None] = mapped_column()


class ErasureRequest(Base):
    __tablename__ = "erasure_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column()
    subject_hash: Mapped[str] = mapped_column(String(64))
    subject_salt: Mapped[str] = mapped_column(String(64))  # "" for hmac-sha256
    # How subject_hash was computed: "salted-sha256" (before migration 0003: sha256 of
    # salt:subject, salt stored beside it) or "hmac-sha256" (keyed with the workspace's
    # subject key in keys/, never in the database).
    subject_scheme: Mapped[str] = mapped_column(String(20), default="hmac-sha256",
                                                server_default="salted-sha256")
    legal_basis: Mapped[str] = mapped_column(Text)
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    status: Mapped[str] = mapped_column(String(20), default="received")
    requested_by: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    rejected_reason: Mapped[str | None] = mapped_column(Text)
    rejected_at: Mapped[dt.datetime | None] = mapped_column()
    executed_at: Mapped[dt.datetime | None] = mapped_column()
    executed_by: Mapped[str | None] = mapped_column(String(200))
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    certified_at: Mapped[dt.datetime | None] = mapped_column()
    erasure_kind: Mapped[str | None] = mapped_column(String(20))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # docs/design.md section 18: unreachable since (prompt deletion, guard rule enabled),
    # and retrain-equivalent since (an exact forget, or a retrain promoted).
    suppressed_at: Mapped[dt.datetime | None] = mapped_column()
    exact_at: Mapped[dt.datetime | None] = mapped_column()


class Job(Base):
    """A training run or any other background job (docs/design.md: TrainingRun / Job)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditRun(Base):
    __tablename__ = "audit_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(50))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    curves: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("erasure_requests.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("erasure_requests.id"))
    manifest: Mapped[str] = mapped_column(Text)  # canonical JSON
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    pdf_path: Mapped[str] = mapped_column(Text, default="")
    signer_fingerprint: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A content-addressed file; a purged artifact stays as a tombstone row."""

    __tablename__ = "artifacts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(50), default="")
    status: Mapped[str] = mapped_column(String(20), default="stored")  # stored / purging / purged
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[dt.datetime | None] = mapped_column()


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Operator(Base):
    """Someone who may approve or reject requests, bound to a passphrase.

    Only ``verifier`` (the first half of the scrypt output) is stored; the second half
    keys the HMAC that signs the operator's decisions and is never written anywhere.
    """

    __tablename__ = "operators"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kdf: Mapped[dict[str, Any]] = mapped_column()  # scheme, salt (hex), n, r, p
    verifier: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServingToken(Base):
    """A bearer token of the inference server; only its sha256 is stored
    (docs/design.md section 13)."""

    __tablename__ = "serving_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(20))  # predict / chat
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, never enough to use
    status: Mapped[str] = mapped_column(String(20), default="active")  # active / revoked
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    timestamp: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, part of the hash
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON, part of the hash
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
