"""One of several processes that work on the same registry at once (test_team_concurrency).

It approves every request (racing the others for each), forgets classes of 'shop' through
the registry's own forget transaction (``storage.versions.commit_forget``: version v+1,
classes forgotten, log entry; the model bytes are a stand-in) and appends to the log, in a
shuffled order. Refusals are expected (another process got there first); anything else
fails the process. Prints what it did as one JSON line.
"""

from __future__ import annotations

import json
import random
import sys

from storage import auditlog
from storage import requests as reqs
from storage.errors import RefusedError
from storage.registry import get_model
from storage.versions import classes_to_forget, commit_forget
from storage.workspace import Workspace
from tests.approvals import passphrase_of


def main(root: str, name: str, requests: list[int], forgets: int, appends: int) -> None:
    steps = ([("approve", r) for r in requests] + [("forget", None)] * forgets
             + [("append", None)] * appends)
    random.Random(name).shuffle(steps)
    done = {"approved": [], "forgotten": 0, "appended": 0, "refused": 0}
    ws = Workspace.open(root)
    try:
        for kind, target in steps:
            try:
                with ws.sessions.begin() as session:
                    _step(session, name, kind, target, done)
            except RefusedError:
                done["refused"] += 1
    finally:
        ws.close()
    print(json.dumps(done))


def _step(session, name: str, kind: str, target: int | None, done: dict) -> None:  # noqa: ANN001
    if kind == "approve":
        reqs.approve(session, target, name, passphrase_of(name))
        done["approved"].append(target)
    elif kind == "forget":
        model = get_model(session, "shop")
        learned = [c.display_name for c in model.classes if c.status == "learned"]
        entries = classes_to_forget(model, [random.choice(learned)])
        commit_forget(session, model, entries, name, None, {})
        done["forgotten"] += 1
    else:
        auditlog.append(session, name, "test.note", {"by": name})
        done["appended"] += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
