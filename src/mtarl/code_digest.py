"""The code a stage runs, as a digest: the workflow passes it to each rule as a param, so editing a module reruns
exactly the jobs whose stage imports it.

``stage_digest(src, "train")`` follows the ``mtarl`` imports of ``mtarl.cli`` and ``mtarl.train`` statically (the
source is parsed with ``ast``, nothing is imported, so planning needs neither torch nor the installed package), and
hashes the path and bytes of every module reached, parent packages included. Imports inside functions count too:
a stage may run them. Run ``python -m mtarl.code_digest src train`` to print one stage's modules and digest.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from pathlib import Path

PACKAGE = "mtarl"


def module_file(src: Path, name: str) -> Path | None:
    """The file of module ``name`` (``mtarl.tasks.math``) under ``src``, or None if it is not a module."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path, name: str) -> set[str]:
    """Every module name in the package that ``path`` (module ``name``) may import, resolved and absolute."""
    stat = path.stat()
    return set(_imported_names(path, name, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=None)  # keyed by mtime and size too: a planning run parses each module once
def _imported_names(path: Path, name: str, _mtime_ns: int, _size: int) -> frozenset[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError:  # a half-edited module: its bytes are still hashed, and the job reports the error
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..tasks import y
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # submodules; names are dropped below
    return frozenset(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))


def with_parents(name: str) -> list[str]:
    """``mtarl.tasks.math`` -> [mtarl, mtarl.tasks, mtarl.tasks.math]: importing a module runs its packages."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def stage_modules(src: str | Path, stage: str) -> dict[str, Path]:
    """The modules a ``mtarl <stage>`` job may import, by name: the closure from the CLI and the stage's module."""
    src = Path(src)
    found: dict[str, Path] = {}
    todo = [f"{PACKAGE}.cli", f"{PACKAGE}.{stage}"]
    if module_file(src, todo[1]) is None:
        raise ValueError(f"no module {todo[1]} under {src}")
    while todo:
        for name in with_parents(todo.pop()):
            path = module_file(src, name)
            if path is None or name in found:
                continue
            found[name] = path
            todo.extend(imported_names(path, name))
    return dict(sorted(found.items()))


def stage_digest(src: str | Path, stage: str) -> str:
    """sha256 over the relative path and bytes of each module of ``stage``: changes iff its code changes."""
    digest = hashlib.sha256()
    for path in stage_modules(src, stage).values():
        digest.update(path.relative_to(src).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    src_dir, stage_name = sys.argv[1], sys.argv[2]
    for module in stage_modules(src_dir, stage_name):
        print(module)
    print(stage_digest(src_dir, stage_name))
