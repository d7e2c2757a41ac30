"""What `learn` refuses because its erasure is recorded (docs/design.md section 3.4): a
class name of a forgotten class, and images of a forgotten class's recorded data under any
name. Either would bring back into the model what a request erased, while the request (and
its certificate) say it is gone, exact or suppressed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.model_store import image_model
from storage.errors import RefusedError
from storage.models import ErasureRequest
from storage.workspace import Workspace

SAME_IMAGE = 4 / 255  # max |difference| on the [-1, 1] scale: one image, re-encoded in 8 bits


def forgotten_classes(ws: Workspace, model_name: str) -> dict[int, str]:
    """label index -> "'name' (request #R exact)" of every forgotten class of the model."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        requests = session.scalars(select(ErasureRequest).where(
            ErasureRequest.model_id == model.id, ErasureRequest.status != "rejected")).all()
        out = {}
        for entry in model.classes:
            if entry.status != "forgotten":
                continue
            mine = [r for r in requests if r.scope.get("kind") == "classes" and entry.label_index
                    in {int(c["index"]) for c in r.scope.get("classes") or []}]
            states = ", ".join(f"#{r.id} {'exact' if r.exact_at else r.status}" for r in mine)
            out[entry.label_index] = f"{entry.display_name!r}" + (
                f" (request {states})" if states else "")
        return out


def refuse_class_name(ws: Workspace, model_name: str, class_name: str) -> None:
    """A class name is learned once: never a live class's, never a forgotten class's."""
    with ws.sessions() as session:
        names = {c.label_index: c.display_name for c in image_model(session, model_name).classes}
    taken = [label for label, name in names.items() if name == class_name]
    if not taken:
        return
    forgotten = forgotten_classes(ws, model_name)
    if taken[0] in forgotten:
        raise RefusedError(f"class {forgotten[taken[0]]} was forgotten from {model_name!r}; "
                           "learning it again would bring back what its erasure removed, "
                           "so nothing was learned")
    raise RefusedError(f"model {model_name!r} already has a class named {class_name!r}")


def refuse_erased_images(ws: Workspace, model_name: str, images: Any, data: Any) -> None:
    """Images that are images of a forgotten class's recorded data (train or test split,
    up to 8-bit re-encoding) are not learned, under any class name."""
    import torch

    new = images.float().reshape(len(images), -1)  # engine.images.Images or a tensor
    for label, described in forgotten_classes(ws, model_name).items():
        theirs = torch.cat([x[y == label].float() for x, y in ((data.train_x, data.train_y),
                                                               (data.test_x, data.test_y))])
        if len(theirs) == 0:
            continue
        flat = theirs.reshape(len(theirs), -1).float()
        same = sum(int((flat - row).abs().amax(dim=1).min() <= SAME_IMAGE) for row in new)
        if same:
            raise RefusedError(f"{same} of the {len(new)} images are images of class "
                               f"{described}, forgotten from {model_name!r}; learning them "
                               "would bring its erased data back, so nothing was learned. "
                               "Remove them from the folder")
