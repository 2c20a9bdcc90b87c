"""Build the sdist and the wheel, check them with twine, and check what each holds.

    .venv/bin/python .ci/check_dist.py

It builds what HEAD holds (uncommitted changes are not part of a release). The wheel must
hold the package only (wechat_oauth/ and its dist-info); the sdist must hold
the tests and the docs too, so that a packager can run the suite from it. Exit status 1 with
the reason when anything is off.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the sdist must contain besides the package (paths under its top directory).
SDIST_MUST_HOLD = (
    "LICENSE",
    "CHANGELOG.rst",
    "README.rst",
    "setup.cfg",
    "tests/conftest.py",
    "docs/conf.py",
    "wechat_oauth/__init__.py",
    "wechat_oauth/py.typed",
)


def main() -> int:
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as tree:
        export_committed_tree(Path(tree))
        done = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", out, tree], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        warnings = build_warnings(done.stdout + done.stderr)
        built = sorted(Path(out).iterdir())
        subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)], check=True)
        [wheel] = [path for path in built if path.suffix == ".whl"]
        [sdist] = [path for path in built if path.name.endswith(".tar.gz")]
        problems = warnings + wheel_problems(wheel) + sdist_problems(sdist)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    return 1 if problems else 0


def export_committed_tree(into: Path) -> None:
    """HEAD's files only (``git archive``): what a release is built from."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


#: Build output that is no warning about the project (the isolated build's own notes).
_NOT_OURS = ("byte-compiling is disabled",)


def build_warnings(output: str) -> list[str]:
    """Every warning the build printed: a clean build prints none."""
    return [
        f"build: {line.strip()}"
        for line in output.splitlines()
        if "warning" in line.lower() and not any(note in line for note in _NOT_OURS)
    ]


def wheel_problems(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    strays = sorted(
        {
            name.split("/")[0]
            for name in names
            if not name.startswith("wechat_oauth/") and ".dist-info/" not in name
        }
    )
    problems = [f"the wheel holds more than the package: {', '.join(strays)}"] if strays else []
    if "wechat_oauth/py.typed" not in names:
        problems.append("the wheel has no wechat_oauth/py.typed")
    if not any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith("/LICENSE") for name in names):
        problems.append("the wheel carries no LICENSE")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [path for path in SDIST_MUST_HOLD if path not in names]
    problems = [f"the sdist lacks {', '.join(missing)}"] if missing else []
    cached = sorted(name for name in names if "__pycache__" in name or name.endswith(".pyc"))
    if cached:
        problems.append(f"the sdist holds compiled files: {cached[:3]}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
