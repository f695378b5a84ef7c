"""Make the preview: load and render both sides, compare them semantically and object by object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from generator import loader, outdir, render
from generator.catalogue import Catalogue
from generator.problems import CatalogueError
from preview import objects, semantic
from preview.changes import ADDED, CHANGED, UNCHANGED, Preview, PreviewError, Revision


@dataclass(frozen=True)
class Loaded:
    """One side: its revision, its catalogue (None: the file does not exist there) and rendered tree."""

    revision: Revision
    catalogue: Catalogue | None
    files: dict[str, str]

    @property
    def side(self) -> objects.Side | None:
        if self.catalogue is None:
            return None
        return objects.Side(self.files, self.catalogue.argocd.path)


def load(
    text: bytes | None,
    revision: Revision,
    side: str,
    *,
    shown: str,
    catalogue_path: Path,
    out_dir: Path | None = None,
) -> Loaded:
    """Load and render one side (`side` is "base" or "head", for errors); PreviewError naming it."""
    where = f"at the {side}: {revision.describe()}"
    if text is None:
        if side == "head":
            raise PreviewError(f"{shown} does not exist {where}")
        return Loaded(revision, None, {})
    try:
        catalogue = loader.loads(text, shown, source_name=catalogue_path.name)
        catalogue, _ = outdir.resolve(catalogue, catalogue_path, out_dir)
    except CatalogueError as exc:
        raise PreviewError(f"the catalogue is invalid {where}", tuple(exc.lines())) from None
    except outdir.OutDirError as exc:
        raise PreviewError(f"cannot use the catalogue {where}; {exc}") from None
    return Loaded(revision, catalogue, render.render(catalogue))


def make(path: str, base: Loaded, head: Loaded, *, kubectl: str = "kubectl") -> Preview:
    """Raises generator.validation.ToolMissing when kubectl is not on PATH."""
    environments = semantic.compare(base.catalogue, head.catalogue)
    names = [env.name for env in environments]
    rendered = objects.compare(base.side, head.side, names, kubectl=kubectl)
    previews = []
    for env in environments:
        found = tuple(rendered.objects.get(env.name, ()))
        errors = tuple(rendered.errors.get(env.name, ()))
        change = CHANGED if env.change == UNCHANGED and (found or errors) else env.change
        previews.append(dataclasses.replace(env, change=change, objects=found, errors=errors))
    notes = ()
    if base.catalogue is None:
        notes = (f"{path} does not exist at the base, {base.revision.describe()}: everything is {ADDED}",)
    warnings = tuple(warning.format(path) for warning in head.catalogue.warnings)
    return Preview(path, base.revision, head.revision, tuple(previews), notes=notes, warnings=warnings)
