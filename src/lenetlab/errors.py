"""The project's error types. A ``LenetlabError`` is a *user* error (bad input, a missing file, an unknown
name) with a one-line message naming the file or field; the CLI prints it as ``error: ...`` and exits 2,
without a traceback. Anything else escaping is a bug and keeps its traceback."""

import difflib
import importlib


class LenetlabError(Exception):
    """A user-facing error with a one-line message naming the file or field at fault."""


class DataError(LenetlabError):
    """A dataset file is missing, malformed, truncated or fails its checksum."""


class ConfigError(LenetlabError):
    """A configuration file or flag has an unknown field or a bad value."""


class CheckpointError(LenetlabError):
    """A checkpoint file is missing, corrupt, or not a lenetlab checkpoint."""


class DiskFullError(LenetlabError):
    """A file did not fit on its device (``ENOSPC``/quota); the previous version of the file is intact."""


class MissingExtra(LenetlabError, ImportError):
    """An optional part of lenetlab needs an extra that is not installed (also an ``ImportError``)."""


def missing_extra(exc: ImportError, extra: str, what: str) -> MissingExtra:
    """The one-line error for ``what`` (a command or feature) when importing a package of ``extra`` failed."""
    missing = getattr(exc, "name", None) or first_line(exc, 60)
    return MissingExtra(f'{what} needs the {extra} extra: pip install "lenetlab[{extra}]" ({missing} is not installed)')


def require(modules: str | tuple[str, ...], extra: str, what: str):
    """Import ``modules`` (one name or several) and return the first; :class:`MissingExtra` naming ``extra``
    and its install command when one of them, or a package it needs, cannot be imported."""
    names = (modules,) if isinstance(modules, str) else modules
    try:
        loaded = [importlib.import_module(name) for name in names]
    except ImportError as e:
        raise missing_extra(e, extra, what) from None
    return loaded[0]


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (``SIGTERM``): handled like Ctrl-C, but the exit status is 143
    (128 + 15, what a shell reports for a process ended by SIGTERM)."""

    exit_status = 143


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first non-empty line of ``exc``'s message (at most ``limit`` characters), or its type name: a
    third-party error (PIL, torch, onnxruntime...) as part of a one-line :class:`LenetlabError`."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip()[:limit] if lines else type(exc).__name__


def did_you_mean(name, known, n: int = 3) -> str:
    """An unknown-name error's hint: `` (did you mean A, B?)``, up to ``n`` close entries of ``known``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=n)
    return f" (did you mean {', '.join(close)}?)" if close else ""
