"""The worker's bookkeeping (docs/design.md section 9): Job rows for jobs that name a workspace,
and the random state a suspended long job keeps while an interleaved job runs (issue 22)."""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.worker import JobSpec, MarkFailed


class KeptState:
    """Keeps the random-number generators' states (and torch's grad mode) of a suspended
    long job while an interleaved job runs, so the long job's result is the one it gives
    alone: same seed, same draws."""

    def __enter__(self) -> None:
        import random

        self.saved: dict[str, Any] = {"random": random.getstate()}
        numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
        if numpy is not None:
            self.saved["numpy"] = numpy.random.get_state()
        if torch is not None:
            self.saved["torch"] = torch.random.get_rng_state()
            self.saved["grad"] = torch.is_grad_enabled()
            if torch.cuda.is_initialized():
                self.saved["cuda"] = torch.cuda.get_rng_state_all()

    def __exit__(self, *_exc: Any) -> None:
        import random

        random.setstate(self.saved["random"])
        if "numpy" in self.saved:
            sys.modules["numpy"].random.set_state(self.saved["numpy"])
        if "torch" in self.saved:
            torch = sys.modules["torch"]
            torch.random.set_rng_state(self.saved["torch"])
            torch.set_grad_enabled(self.saved["grad"])
            if "cuda" in self.saved:
                torch.cuda.set_rng_state_all(self.saved["cuda"])


class JobBook:
    """Job rows (storage.models.Job) for every job that names a workspace."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._workspaces: dict[str, Any] = {}

    def _sessions(self, path: str) -> Any:
        if path not in self._workspaces:
            from storage.workspace import Workspace

            self._workspaces[path] = Workspace.open(path)
        return self._workspaces[path].sessions

    def start(self, spec: JobSpec) -> int | None:
        path = spec.kwargs.get("workspace")
        if not path:
            return None
        from storage.models import Job, utcnow

        config = {"target": spec.target,
                  "kwargs": {k: v for k, v in spec.kwargs.items() if k != "workspace"}}
        with self._sessions(str(path)).begin() as session:
            job = Job(kind=spec.kind, config=config, seed=_seed(spec.kwargs),
                      device=self.device, status="running", started_at=utcnow())
            session.add(job)
            session.flush()
            return job.id

    def finish(self, row: int | None, spec: JobSpec, status: str, data: dict) -> None:
        if row is None:
            return
        value = data.get("value")
        result = value if isinstance(value, dict) else {"value": value}
        self._update(str(spec.kwargs["workspace"]), row, status,
                     data.get("message") if status != "succeeded" else None, result)

    def mark_failed(self, message: MarkFailed) -> None:
        self._update(message.workspace, message.row, "failed", message.error, {})

    def _update(self, path: str, row: int, status: str, error: str | None,
                result: dict[str, Any]) -> None:
        from storage.models import Job, utcnow

        try:
            with self._sessions(path).begin() as session:
                job = session.get(Job, row)
                job.status, job.error, job.finished_at = status, error, utcnow()
                job.result = result
        except Exception:  # noqa: BLE001 - bookkeeping never takes the worker down
            traceback.print_exc()

    def close(self) -> None:
        for workspace in self._workspaces.values():
            workspace.close()


def _seed(kwargs: dict[str, Any]) -> int:
    try:
        return int(kwargs.get("seed") or 0)
    except (TypeError, ValueError):
        return 0
