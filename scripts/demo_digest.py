"""SHA-256 of the demo's ``tables/*.csv``, here and (optionally) at another git revision.

Shows that a refactor changes no number the demo prints::

    python scripts/demo_digest.py                 # digests of this checkout
    python scripts/demo_digest.py --against 2da2de0

With ``--against REV`` the demo also runs from a temporary ``git worktree``
of REV (with ``PYTHONPATH`` pointing at it, so the same environment runs
both) and the script exits 1 unless every table is byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_tables(src: Path, out: Path) -> dict[str, str]:
    """Run ``planner demo`` from the source tree ``src`` into ``out``; name -> SHA-256."""
    env = dict(os.environ, PYTHONPATH=str(src))
    subprocess.run([sys.executable, "-m", "planner", "demo", "-o", str(out)], cwd=src, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "tables").glob("*.csv"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", metavar="REV", help="git revision to compare with")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        here = demo_tables(ROOT, Path(tmp) / "here")
        if not args.against:
            for name, digest in here.items():
                print(f"{digest}  {name}")
            return 0
        tree = Path(tmp) / "rev"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.against], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            there = demo_tables(tree, Path(tmp) / "there")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False)
    names = sorted(set(here) | set(there))
    same = True
    for name in names:
        ok = here.get(name) == there.get(name)
        same &= ok
        print(f"{'identical' if ok else 'DIFFERENT'}  {name}  {here.get(name, '-')[:16]}  "
              f"{there.get(name, '-')[:16]}")
    print(f"RESULT demo_tables files={len(names)} identical={str(same).lower()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
