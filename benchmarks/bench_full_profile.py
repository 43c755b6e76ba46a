"""Time to execute each solution notebook in the full profile on this machine's CPU, against the
stand-ins CI uses (tiny hotdog-layout folder, random ResNet-18 weights; ``COURSE_MAX_EPOCHS=1``).

Run: ``python benchmarks/bench_full_profile.py [--per-class 8] [solutions/ch2_hotdog ...]``.
Prints one line per notebook (seconds, failing cells) and the total.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fullprofile import make_standins, run_notebook  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", type=Path, help="assignment folders (default: all)")
    parser.add_argument("--per-class", type=int, default=8, help="stand-in images per class and split")
    args = parser.parse_args()
    targets = args.targets or sorted(p for p in (REPO / "solutions").iterdir() if p.is_dir())
    total, failed = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        env = make_standins(Path(tmp), args.per_class)
        for folder in targets:
            path = (REPO / folder / f"{Path(folder).name}.ipynb").resolve()
            errors, seconds = run_notebook(path, env)
            total += seconds
            failed += bool(errors)
            print(f"{path.parent.name:<18}{seconds:7.1f} s  {'OK' if not errors else 'FAILED: ' + '; '.join(errors)}")
    print(f"{'all':<18}{total:7.1f} s  ({failed} notebook(s) with failing cells)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
