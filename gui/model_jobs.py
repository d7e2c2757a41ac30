"""The Models screen's jobs (issue 22): one per class, so a forget or an evaluation runs
while the screen's learn runs. The result panel follows the job started last (and shows
every result); the other job's progress stays on screen in one line above the panel."""

from __future__ import annotations

from typing import Any

from gui.bridge import JobHandle
from gui.errors import show_error


class ModelJobs:
    """Mixed into ``ModelsWidget``: needs ``ctx``, ``result_panel``, ``background_label``,
    ``classes_table``, ``_measured``, ``_jobs``, ``_shown``, ``_update_actions`` and the
    module's ``LANES``."""

    @property
    def _job(self) -> JobHandle | None:
        """The job the result panel follows, else this screen's other job, else None."""
        jobs = [handle for handle, _info in self._jobs.values()]
        shown = [handle for handle in jobs if handle.job_id == self._shown]
        return (shown or jobs or [None])[0]

    def _run(self, kind: str, title: str, target: str, kwargs: dict[str, Any],
             **info: Any) -> None:
        handle = self.ctx.submit_job(target, kwargs, lane=self.lanes[kind])
        info = {"kind": kind, "title": title, "model": kwargs["model_name"], **info}
        self._jobs[self.lanes[kind]] = (handle, info)
        self._shown = handle.job_id
        handle.progressed.connect(lambda data: self._on_job_progressed(handle, info, data))
        handle.waiting.connect(lambda reason: self._on_job_waiting(handle, info, reason))
        handle.succeeded.connect(lambda result: self._on_job_succeeded(handle, info, result))
        handle.failed.connect(lambda message, _tb: self._on_job_failed(info, message))
        handle.finished.connect(lambda status: self._on_job_finished(handle, info, status))
        self.result_panel.show_running(f"{title}…")
        self._update_background()
        self._update_actions()

    def _update_background(self, data: dict[str, Any] | None = None) -> None:
        """One line for this screen's job that the panel does not follow (a learn while a
        forget runs or shows its result)."""
        hidden = [(h, i) for h, i in self._jobs.values() if h.job_id != self._shown]
        self.background_label.setVisible(bool(hidden))
        if hidden and data is not None:
            fraction = data.get("fraction")
            done = f" ({round(100 * fraction)} %)" if fraction is not None else ""
            self.background_label.setText(f"{hidden[0][1]['title']}: "
                                          f"{data.get('message', '')}{done}")
        elif hidden:
            self.background_label.setText(f"{hidden[0][1]['title']}: running…")

    def _on_job_waiting(self, handle: JobHandle, info: dict[str, Any], reason: str) -> None:
        if handle.job_id == self._shown:
            self.result_panel.show_running(f"{info['title']}: waiting, {reason}…")

    def _on_job_progressed(self, handle: JobHandle, info: dict[str, Any],
                           data: dict[str, Any]) -> None:
        if handle.job_id == self._shown:
            self.result_panel.show_progress(data)
        else:
            self._update_background(data)

    def _on_job_succeeded(self, handle: JobHandle, info: dict[str, Any],
                          result: dict[str, Any]) -> None:
        kind, model = info["kind"], info["model"]
        if kind == "retrain":
            self._shown = handle.job_id
            self.result_panel.show_retrain(result)
            return
        after = result["accuracy_after"] if kind in ("forget", "learn") else result
        self._measured[(model, result["version"])] = dict(after["per_class"])
        self._shown = handle.job_id  # a result is news: the panel shows it
        if kind == "forget":
            self.classes_table.clearSelection()  # the forgotten rows show their new status
            self.result_panel.show_forget(result, info.get("request"))
        elif kind == "learn":
            self.result_panel.show_learn(result)
        else:
            self.result_panel.show_evaluation(result)

    def _on_job_failed(self, info: dict[str, Any], message: str) -> None:
        title = f"{info['title']} failed"
        self.result_panel.show_failure(title, message)
        show_error(self, title, message)

    def _on_job_finished(self, handle: JobHandle, info: dict[str, Any], status: str) -> None:
        if status == "cancelled":
            self.result_panel.show_failure(f"{info['title']} was cancelled",
                                           "nothing was changed")
        self._jobs = {lane: (h, i) for lane, (h, i) in self._jobs.items() if h is not handle}
        if self._shown == handle.job_id:
            self._shown = None
        self._update_background()
        self._update_actions()
