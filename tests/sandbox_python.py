"""An interpreter that user nobody can run, for the tests that grade as root or as nobody.

As root the grader drops submitted code to user ``nobody`` (``grader.sandbox.identity.choose_identity``),
which needs a Python it can read: the interpreter, its standard library, torch, Lightning. A
Python under /root (pyenv) or a venv whose base lives there is out of its reach, so the tests make
one themselves, once per interpreter and project state, and keep it for the next run:

    /var/tmp/litlabs-sandbox-venv-<hash>/   (world-readable, owned by root)
        base/   the current interpreter's base installation, hard-linked (copied where links fail):
                bin/pythonX.Y (its library search path made relative, $ORIGIN/../lib), lib/
        venv/   a venv of that base without pip; a .pth file adds the current interpreter's
                site-packages (the copies under base/ or site-N/ where nobody cannot read them),
                and bin/litlabs runs grader.cli like the installed command
        ready   written once user nobody has imported torch, Lightning and grader with it; touched
                at each use. Making a new one removes those made earlier for the same interpreter
                and unused for an hour (a pip install changed the key).

The first run costs ~10-20 s (hard-linking ~90,000 files of a pyenv with torch); later runs
find it ready in under a second (reading the installed packages' versions for the key). Which interpreter:

1. ``LITLABS_SANDBOX_PYTHON``, when set (e.g. the venv ``.ci/sandbox-env`` makes under /opt);
2. the current interpreter, when nobody can already read it and it has the ``litlabs`` command;
3. the one made here (``LITLABS_SANDBOX_CACHE`` names another folder than /var/tmp);
4. /opt/litlabs-venv, when that could not be made and ``.ci/sandbox-env`` made that one.

Otherwise the test skips and says why and what to do (it fails instead under LITLABS_REQUIRE_SANDBOX).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import site
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

OPT_VENV = Path("/opt/litlabs-venv/bin/python")  # what .ci/sandbox-env makes
IMPORTS = "torch, lightning, torchmetrics, torchvision, grader.sandbox.zygote"  # what a grading worker needs
LAYOUT = 2  # of the folder made below: a change makes a new one


class Unavailable(Exception):
    """No interpreter user nobody can run could be found or made; the message says why."""


_chosen: Path | Unavailable | None = None  # this process's answer, good or bad: asked for once


def sandbox_python() -> Path:
    """The interpreter nobody can run, when this test runs as root; else skip with the reason (fail in CI)."""
    global _chosen
    if _chosen is None:
        try:
            _chosen = _choose()
        except Unavailable as err:
            _chosen = err
    if isinstance(_chosen, Unavailable):
        if os.environ.get("LITLABS_REQUIRE_SANDBOX"):
            pytest.fail(str(_chosen))
        pytest.skip(str(_chosen))
    return _chosen


class _ChosenPath(os.PathLike):
    """``str(SANDBOX_PYTHON)``: the chosen interpreter's path, chosen when first asked (skips like sandbox_python)."""

    def __fspath__(self) -> str:
        return str(sandbox_python())

    __str__ = __fspath__


SANDBOX_PYTHON = _ChosenPath()


# --- choosing ---------------------------------------------------------------------------------

def _choose() -> Path:
    from grader.course import REPO_ROOT
    from grader.sandbox.identity import _others_can_read

    if os.geteuid() != 0:
        raise Unavailable("needs root: these tests grade as root, which runs submitted code as user nobody, and "
                          "switch to nobody themselves (runuser); run the suite as root to include them")
    if not _others_can_read(REPO_ROOT / "grader"):
        raise Unavailable(f"user nobody cannot read this checkout ({REPO_ROOT}): clone it outside /root (e.g. under "
                          "/work or /srv) to run the tests that grade as nobody")
    explicit = os.environ.get("LITLABS_SANDBOX_PYTHON")
    if explicit:
        python = Path(explicit)
        problem = _unusable(python)
        if problem:
            raise Unavailable(f"LITLABS_SANDBOX_PYTHON={explicit}: {problem}")
        return python
    current = Path(sys.executable)
    if not _unreadable_here() and (current.parent / "litlabs").exists():
        return current
    try:
        return made_python()
    except Unavailable as err:
        if OPT_VENV.exists() and not _unusable(OPT_VENV):
            return OPT_VENV
        raise Unavailable(f"no Python that user nobody can run: {err}. Run the suite with an interpreter outside "
                          "/root, or make one with `bash .ci/sandbox-env` (a venv in /opt/litlabs-venv) or set "
                          "LITLABS_SANDBOX_PYTHON to one that has litlabs' dependencies") from None


def _unreadable_here() -> list[str]:
    """What of the current interpreter user nobody cannot read (the files choose_identity looks at)."""
    from grader.sandbox.identity import _others_can_read, interpreter_files

    return [str(p) for p in interpreter_files() if not _others_can_read(p)]


def _unusable(python: Path) -> str:
    """Why user nobody cannot grade with python ('' if it can): it must exist and import what a worker needs."""
    if not python.exists():
        return f"{python} does not exist"
    try:
        _as_nobody(python)
    except Unavailable as err:
        return str(err)
    return ""


def _as_nobody(python: Path) -> None:
    """Import torch, Lightning and the grader with python as user nobody; raise Unavailable with what went wrong."""
    from grader.course import REPO_ROOT

    code = (f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); import {IMPORTS}; "
            "from grader.sandbox.identity import interpreter_files; print(*interpreter_files(), sep='\\n')")
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise Unavailable("there is no runuser command (util-linux) to run a program as user nobody")
    try:
        done = subprocess.run([runuser, "-u", "nobody", "--", str(python), "-I", "-c", code], cwd="/",
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"},
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"running {python} as user nobody failed ({type(err).__name__}: {err})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"user nobody cannot import {IMPORTS} with {python} ({last})")
    from grader.sandbox.identity import _others_can_read

    hidden = [p for p in done.stdout.split() if not _others_can_read(Path(p))]
    if hidden:  # what the grader itself will look at before it drops to nobody
        raise Unavailable(f"the grader will find {hidden[0]} unreadable to nobody when it runs on {python}")


# --- making one -------------------------------------------------------------------------------

def cache_root() -> Path:
    return Path(os.environ.get("LITLABS_SANDBOX_CACHE", "/var/tmp"))


def _site_dirs() -> list[str]:
    """The current interpreter's site-packages folders, in sys.path order, that exist."""
    found = [p for p in [*sys.path, *site.getsitepackages()]
             if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]
    return list(dict.fromkeys(os.path.realpath(p) for p in found))


def cache_key() -> str:
    """What the made interpreter depends on: this interpreter, its installed packages, this checkout."""
    from importlib.metadata import distributions

    from grader.course import REPO_ROOT

    installed = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]})
    facts = [LAYOUT, os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, sys.version, str(REPO_ROOT),
             _site_dirs(), installed]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]


def made_python() -> Path:
    """The interpreter made for nobody in the cache (made now if it is not there yet); its path."""
    root = cache_root() / f"litlabs-sandbox-venv-{cache_key()}"
    python = root / "venv" / "bin" / "python"
    if not (root / "ready").exists():
        root.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        # Two pytest-xdist workers: one makes it, the other waits. O_NOFOLLOW: /var/tmp is everyone's.
        lock = os.open(f"{root}.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (root / "ready").exists():
                shutil.rmtree(root, ignore_errors=True)  # a half-made one, from a run that was killed
                try:
                    _make(root)
                    _as_nobody(python)
                except BaseException:
                    shutil.rmtree(root, ignore_errors=True)
                    raise
                (root / "interpreter").write_text(os.path.realpath(sys.executable))
                (root / "ready").write_text(f"{python}\n")
                _remove_stale(root)
        finally:
            os.close(lock)
    _check_ours(root)
    os.utime(root / "ready")  # in use: _remove_stale leaves it alone
    return python


def _remove_stale(kept: Path, idle_seconds: float = 3600) -> None:
    """Remove the ones made earlier for this same interpreter (before a pip install changed its packages, or by
    an earlier layout) and unused for an hour: their hard links would keep the replaced packages' files on disk."""
    for other in kept.parent.glob("litlabs-sandbox-venv-*"):
        try:
            idle = os.stat(other / "ready").st_mtime < time.time() - idle_seconds
        except OSError:
            continue
        try:
            same = (other / "interpreter").read_text() == (kept / "interpreter").read_text()
        except OSError:
            same = True  # made before the interpreter was recorded
        if other != kept and same and idle and other.stat().st_uid == os.geteuid():
            shutil.rmtree(other, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(f"{other}.lock")


def _check_ours(root: Path) -> None:
    """Refuse a cached folder someone else could have planted or changed (this runs it as root)."""
    info = root.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise Unavailable(f"{root} is not this user's own, or others can write it: remove it")


def _make(root: Path) -> None:
    root.mkdir(mode=0o755, parents=True)
    root.chmod(0o755)
    base = Path(os.path.realpath(sys.base_prefix))
    base_python = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    from grader.sandbox.identity import _others_can_read

    if _others_can_read(base_python) and _others_can_read(Path(os.__file__)):
        new_base, new_python = base, base_python
    else:  # a pyenv under /root: copy what an interpreter needs (bin/pythonX.Y, lib/) out of it
        new_base = root / "base"
        new_python = new_base / base_python.relative_to(base)
        _link_tree(base / "lib", new_base / "lib")
        new_python.parent.mkdir(mode=0o755, parents=True)
        shutil.copy2(base_python, new_python)  # a copy, not a link: it is patched
        _relocate_library_path(new_python, base_python.parent, base)
    subprocess.run([str(new_python), "-m", "venv", "--without-pip", str(root / "venv")], check=True,
                   capture_output=True, text=True, timeout=120)
    venv_site = _venv_site_packages(root / "venv")
    lines = []
    for index, folder in enumerate(_site_dirs()):
        if _others_can_read(Path(folder)):
            seen = folder
        elif new_base != base and Path(folder).is_relative_to(base):
            seen = str(new_base / Path(folder).relative_to(base))  # already in the copy of the base
        else:
            seen = str(root / f"site-{index}")
            _link_tree(Path(folder), Path(seen))
        lines.append(f"import site; site.addsitedir({seen!r})\n")
        if seen != folder:
            _unshare_data_files(Path(folder), Path(seen))
    (venv_site / "litlabs-sandbox.pth").write_text("".join(lines))
    litlabs = root / "venv" / "bin" / "litlabs"
    litlabs.write_text(f"#!{root / 'venv' / 'bin' / 'python'}\n"
                       "import sys\n\nfrom grader.cli import main\n\nif __name__ == '__main__':\n    sys.exit(main())\n")
    litlabs.chmod(0o755)


def _unshare_data_files(folder: Path, copy: Path) -> None:
    """Real copies, not links, of the data files the grader's file-mode fallback hides by chmod while it grades
    (a chmod through one link would hide both), readable as a package's files are."""
    try:
        from datamodules.cache import labelled_data_files
    except ImportError:
        return
    for path in labelled_data_files():
        if path.is_file() and path.resolve().is_relative_to(folder):
            target = copy / path.resolve().relative_to(folder)
            target.unlink(missing_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)


def _venv_site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def _link_tree(source: Path, target: Path) -> None:
    """Copy a folder with hard links (a copy where the file system refuses them), folders 0755 like the source."""
    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)


# The dynamic section of an ELF file: where a program looks for its shared libraries (DT_RPATH, DT_RUNPATH).
_DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 5, 15, 29


def _relocate_library_path(binary: Path, old_bin: Path, old_base: Path) -> None:
    """Rewrite a copied interpreter's library search path from the old base to $ORIGIN-relative.

    pyenv builds with --enable-shared link python to its libpython by an absolute RUNPATH
    (/root/.pyenv/versions/X/lib): nobody cannot follow it, and the zygote's environment has no
    LD_LIBRARY_PATH. The entry becomes $ORIGIN/../lib, in place (padded with NULs: it is shorter).
    """
    data = bytearray(binary.read_bytes())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return  # not a 64-bit little-endian ELF file: nothing we know how to patch (the smoke test will tell)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return  # static: no library path
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + at) for at in range(0, dynamic[1], 16)]
    strtab = next((value for tag, value in entries if tag == _DT_STRTAB), None)
    if strtab is None:
        return
    strtab_offset = next(offset + strtab - vaddr for vaddr, offset, size in loads if vaddr <= strtab < vaddr + size)
    changed = False
    for tag, value in entries:
        if tag not in (_DT_RPATH, _DT_RUNPATH):
            continue
        start = strtab_offset + value
        end = data.index(0, start)
        old = data[start:end].decode()
        parts = []
        for part in old.split(":"):
            if part == str(old_base) or part.startswith(str(old_base) + "/"):
                part = "$ORIGIN/" + os.path.relpath(part, old_bin)
            parts.append(part)
        new = ":".join(parts).encode()
        if new != old.encode():
            if len(new) > end - start:
                raise Unavailable(f"cannot make {binary}'s library path ({old}) relative: no room")
            data[start:end] = new + b"\0" * (end - start - len(new))
            changed = True
    if changed:
        binary.write_bytes(bytes(data))

