"""SavedModel checks over S3: prove that the versions TF Serving *will load* from a base path are complete
SavedModels, reading only what that proof needs. No Flask and no click in here: the webhook, the CLI, CI and
the sync sidecar all import this package.

The validity contract, for a base path ``s3://bucket/prefix`` and a version policy:

1. Version directories are the immediate children of the base path as TF Serving's S3 listing sees them
   (common prefixes under ``prefix/``) whose names parse as a non-negative int64; leading zeros are allowed
   (``00000123`` is 123). Other names (``v1``, ``10.tmp``, ``latest``) are not versions: they are ignored
   and reported. Zero-byte "folder marker" keys ending in ``/`` are not files, but a numeric directory that
   holds only a marker is an empty version TF Serving will select: it is invalid, not absent. Two names with
   the same number (``1`` and ``01``) are reported; when that number is selected the model is invalid.
2. The policy selects what TF Serving would load: ``latest`` the highest, ``latest:N`` the N highest,
   ``all`` every version, ``specific:V1,V2`` exactly those (each must exist). Only selected versions decide
   the verdict; the others are listed for information. No version at all (a missing or empty base path) is
   invalid.
3. A selected version is valid when it holds a non-empty ``saved_model.pb`` (or ``saved_model.pbtxt``) that
   parses as a SavedModel with a MetaGraph whose tag set is exactly the requested one (``{serve}`` by
   default, as TF Serving asks); when that MetaGraph has a saver or a ``variables/`` prefix exists,
   ``variables/variables.index`` exists and every ``variables.data-NNNNN-of-MMMMM`` shard 0..MMMMM-1 exists
   with one consistent MMMMM; and the signature the catalogue expects (e.g. ``serving_default``) exists when
   one is named. A model without variables may have no ``variables/`` at all (TF's loader then skips the
   restore).
4. A truncated or corrupt ``saved_model.pb`` is invalid. It is detected without downloading the file: every
   declared length of the outer protobuf fields must fit the object's size.

Verdicts are distinct: VALID; INVALID (with every reason, per version); CANNOT_VERIFY (storage unreachable,
access denied, throttled past the retry budget, out of time; never reported as "missing", since S3 answers
403 rather than 404 for a missing key when ListBucket is not allowed).

Cost per selected version: one listing of its keys and typically one or two ranged GETs of
``saved_model.pb`` (the GraphDef is skipped by its length prefix), plus one delimiter listing of the base
path (paginated).

The same rules apply to a local directory (`check_local_version`, `verify_local`): `evaluate` runs them over
any tree (`trees.BaseTree`/`VersionTree`), S3 (`s3tree`) or local (`local`)."""

from rulebook.policy import VersionPolicy, parse_version_name

from .checker import DEFAULT_TAGS, S3Path, SavedModelChecker, deadline_in
from .local import check_local_version, verify_local
from .pbwire import MetaGraphInfo, SavedModelInfo, SignatureInfo, TensorSpec, WireError
from .report import (
    ModelReport,
    TransferStats,
    Verdict,
    VersionReport,
    render_inspect_text,
    render_verify_text,
)
from .storage import S3Settings, S3Store
from .trees import ObjectEntry, StorageError

__all__ = [
    "DEFAULT_TAGS",
    "MetaGraphInfo",
    "ModelReport",
    "ObjectEntry",
    "S3Path",
    "S3Settings",
    "S3Store",
    "SavedModelChecker",
    "SavedModelInfo",
    "SignatureInfo",
    "StorageError",
    "TensorSpec",
    "TransferStats",
    "Verdict",
    "VersionPolicy",
    "VersionReport",
    "WireError",
    "check_local_version",
    "deadline_in",
    "parse_version_name",
    "render_inspect_text",
    "render_verify_text",
    "verify_local",
]
