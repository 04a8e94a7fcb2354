"""Write the shell completion scripts in completions/ from the CLI (or check they are current).

    .venv/bin/python scripts/gen_completions.py          # write what changed
    .venv/bin/python scripts/gen_completions.py --check  # exit 1 if any is out of date

The rendering lives in jupytunnel.completion, so `jupytunnel completion show|install` give the
same scripts from an installed package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "completions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a script is out of date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from jupytunnel.cli.app import app
    from jupytunnel.completion import command_tree, render_all

    stale = []
    for name, text in render_all(command_tree(app)).items():
        path = OUT / name
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        print("run: python scripts/gen_completions.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
