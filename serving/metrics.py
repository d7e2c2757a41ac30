"""Server metrics in the Prometheus text format (docs/design.md section 13).

Counters and histograms kept in memory (the server's only state besides its caches);
``render`` writes text format 0.0.4. Nothing here ever holds a prompt or an image.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{_num(b)}"}} {c}'
               for b, c in zip(self.buckets, self.counts, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        brace = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{brace} {self.total}", f"{name}_count{brace} {self.count}"]
        return out


class Metrics:
    """What ``GET /metrics`` reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch = Histogram(BATCH_BUCKETS)
        self.swaps: dict[str, int] = defaultdict(int)
        self.last_swap: dict[str, float] = {}
        self.flagged = 0
        self.served_by_model: dict[str, int] = defaultdict(int)

    def request(self, route: str, model: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, model, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)
            if status < 400 and model:
                self.served_by_model[model] += 1

    def batch_size(self, n: int) -> None:
        with self._lock:
            self.batch.observe(n)

    def swap(self, model: str, at: float) -> None:
        with self._lock:
            self.swaps[model] += 1
            self.last_swap[model] = at

    def flag(self) -> None:
        with self._lock:
            self.flagged += 1

    def render(self) -> str:
        with self._lock:
            return "\n".join(self._lines()) + "\n"

    def _lines(self) -> list[str]:
        out = ["# HELP unprompt_requests_total Requests answered, by route, model and status.",
               "# TYPE unprompt_requests_total counter"]
        out += [f'unprompt_requests_total{{route="{r}",model="{_esc(m)}",status="{s}"}} {n}'
                for (r, m, s), n in sorted(self.requests.items())]
        out += ["# HELP unprompt_request_seconds Time from request to response.",
                "# TYPE unprompt_request_seconds histogram"]
        for route, hist in sorted(self.latency.items()):
            out += hist.lines("unprompt_request_seconds", f'route="{route}"')
        out += ["# HELP unprompt_batch_size Images per forward pass.",
                "# TYPE unprompt_batch_size histogram", *self.batch.lines("unprompt_batch_size"),
                "# HELP unprompt_swaps_total Live versions swapped in, by model.",
                "# TYPE unprompt_swaps_total counter"]
        out += [f'unprompt_swaps_total{{model="{_esc(m)}"}} {n}'
                for m, n in sorted(self.swaps.items())]
        out += ["# HELP unprompt_last_swap_timestamp_seconds When each model's live version "
                "was last swapped in (Unix time).",
                "# TYPE unprompt_last_swap_timestamp_seconds gauge"]
        out += [f'unprompt_last_swap_timestamp_seconds{{model="{_esc(m)}"}} {t:.3f}'
                for m, t in sorted(self.last_swap.items())]
        out += ["# HELP unprompt_chat_flagged_total Prompts a forget rule flagged.",
                "# TYPE unprompt_chat_flagged_total counter",
                f"unprompt_chat_flagged_total {self.flagged}"]
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
