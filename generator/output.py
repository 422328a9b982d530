"""Collects every generated file, formats the Python ones with ruff, and writes what changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from generator import naming, spec
from generator.render import (
    api_exports,
    render_api_package,
    render_enum,
    render_limited_api,
    render_model,
    render_models_package,
    render_sandbox_table,
    render_security_table,
    render_tag_api,
)
from generator.render_docs import api_docs, model_docs, readme_table, section_between
from generator.rules import DOCSTRING_OVERRIDES, HAND_WRITTEN_API_DOCS
from generator.templates import HEADER, MD_HEADER, PACKAGE_EXPORTS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "kenar_api_client"
#: Folders where a file carrying the generated header and no longer produced is removed.
MANAGED_DIRS = (f"{PACKAGE}/models", f"{PACKAGE}/api", "docs")
README_MARKERS = ("<!-- generated:operations:start -->", "<!-- generated:operations:end -->")


def generate(root: Path) -> Dict[str, str]:
    """Every generated file, by path relative to ``root``, as it should be."""
    document = spec.load(root / "generator" / "spec" / "kenar-openapi.json")
    files: Dict[str, str] = {}
    for model in document.models:
        files[f"{PACKAGE}/models/{model.module}.py"] = render_model(model)
    for enum in document.enums:
        files[f"{PACKAGE}/models/{enum.module}.py"] = render_enum(enum)
    files[f"{PACKAGE}/models/__init__.py"], files[f"{PACKAGE}/models/__init__.pyi"] = render_models_package(
        document
    )
    for tag in document.tags:
        files[f"{PACKAGE}/api/{naming.api_module_name(tag)}.py"] = render_tag_api(
            document, tag, DOCSTRING_OVERRIDES
        )
    files[f"{PACKAGE}/api/limited_api.py"] = render_limited_api(document)
    files[f"{PACKAGE}/api/__init__.py"] = render_api_package(document)
    files[f"{PACKAGE}/_operation_security.py"] = render_security_table(document)
    files[f"{PACKAGE}/sandbox/_spec_operations.py"] = render_sandbox_table(document)
    files[f"{PACKAGE}/_exports.py"] = package_exports(document)
    files = format_python(root, files)
    files.update(api_docs(document, HAND_WRITTEN_API_DOCS))
    files.update(model_docs(document))
    readme = (root / "README.md").read_text(encoding="utf-8")
    # The README is the PyPI page too: its links are absolute, under the project's Homepage.
    docs_url = f"{homepage(root)}/blob/main/docs"
    pages = {name: f"{docs_url}/{name}.md" for name in HAND_WRITTEN_API_DOCS}
    files["README.md"] = section_between(readme, *README_MARKERS, readme_table(document, pages, docs_url))
    return files


def homepage(root: Path) -> str:
    """The ``Homepage`` of ``[project.urls]`` in pyproject.toml."""
    found = re.search(
        r'^Homepage\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M
    )
    if found is None:
        raise ValueError("pyproject.toml has no Homepage in [project.urls]")
    return found.group(1)


def package_exports(document: spec.Spec) -> str:
    """``_exports.py``: the APIs and models the package ``__init__`` exports, and their types."""
    exports = {name: ".api" for name in api_exports(document) if not name.endswith("LimitedApi")}
    models = [m.class_name for m in document.models] + [e.class_name for e in document.enums]
    exports.update(
        {name: ".models" for name in [*models, "GoogleRpcStatus", "GooglerpcStatus", "ProtobufAny"]}
    )
    apis = sorted((name for name, module in exports.items() if module == ".api"), key=str.lower)
    model_names = sorted((name for name, module in exports.items() if module == ".models"), key=str.lower)
    return PACKAGE_EXPORTS.substitute(
        header=HEADER,
        exports="\n".join(f'    "{name}": "{exports[name]}",' for name in sorted(exports)),
        names="\n".join(f'    "{name}",' for name in sorted(exports)),
        imports=import_block("kenar_api_client.api", apis)
        + "\n"
        + import_block("kenar_api_client.models", model_names),
    )


def import_block(module: str, names: List[str]) -> str:
    return "\n".join(
        [f"    from {module} import (", *(f"        {name} as {name}," for name in names), "    )"]
    )


def format_python(root: Path, files: Dict[str, str]) -> Dict[str, str]:
    """``files`` with the Python ones sorted and formatted by ruff, under the project's settings."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(root / "pyproject.toml", work / "pyproject.toml")
        python_files = [name for name in files if name.endswith((".py", ".pyi"))]
        for name in python_files:
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[name], encoding="utf-8")
        ruff = [sys.executable, "-m", "ruff"]
        fixable = python_files
        fix_imports = [*ruff, "check", "--select", "I,F401", "--fix", "--quiet", *fixable]
        subprocess.run(fix_imports, cwd=work, check=True, capture_output=True)  # noqa: S603
        subprocess.run([*ruff, "format", "--quiet", *python_files], cwd=work, check=True, capture_output=True)  # noqa: S603
        formatted = dict(files)
        for name in python_files:
            formatted[name] = (work / name).read_text(encoding="utf-8")
    return formatted


def write(root: Path, files: Dict[str, str]) -> List[str]:
    """Write the files that differ, remove stale generated ones; return what changed."""
    changed = []
    for name, text in sorted(files.items()):
        path = root / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(name)
    for folder in MANAGED_DIRS:
        for path in sorted((root / folder).glob("*.*")):
            name = path.relative_to(root).as_posix()
            if name not in files and is_generated(path):
                path.unlink()
                changed.append(name)
    return changed


def is_generated(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        return handle.readline() in (HEADER, MD_HEADER)
