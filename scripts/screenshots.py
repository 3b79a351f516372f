"""Make the README's pictures: the demo's web map and report, shot by headless Chromium.

    PYTHONPATH=$PWD python scripts/screenshots.py [--out docs/img]

Runs the built-in demo into a temporary folder, opens ``map.html`` and
``report.html`` from ``file://`` in headless Chromium with the network cut
off (as the browser tests do), and saves ``map.png`` and ``report.png``
reduced to a 256-colour palette so each stays well under 300 KB.  Needs
Chromium (``apt-get install chromium``) and a CJK font for the report's
print maps (``fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run", "--disable-extensions",
         "--virtual-time-budget=10000"]
MAX_BYTES = 300_000


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("Chromium not found: apt-get install chromium")


def shoot(page: Path, png: Path, size: tuple[int, int], tmp: Path) -> None:
    raw = tmp / f"{png.stem}-raw.png"
    subprocess.run([chromium(), *FLAGS, f"--window-size={size[0]},{size[1]}",
                    f"--user-data-dir={tmp / ('profile-' + png.stem)}",
                    f"--screenshot={raw}", page.as_uri()],
                   check=True, capture_output=True, timeout=180)
    small(raw, png)


def small(raw: Path, png: Path) -> None:
    """A palette PNG, made smaller until it is under `MAX_BYTES`."""
    from PIL import Image

    img = Image.open(raw).convert("RGB")
    for colours in (256, 128, 64):
        img.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
        if png.stat().st_size < MAX_BYTES:
            return
    raise SystemExit(f"{png} is still {png.stat().st_size} bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    from planner import pipeline
    from planner._errors import PlannerWarning

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="planner-shots-") as tmp_name:
        tmp = Path(tmp_name)
        sc = pipeline.load_scenario(pipeline.demo_scenario_path())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlannerWarning)
            pipeline.run(sc, out_dir=tmp / "demo")
        shoot(tmp / "demo" / "map.html", args.out / "map.png", (1200, 760), tmp)
        shoot(tmp / "demo" / "report.html", args.out / "report.png", (1100, 1500), tmp)
    for name in ("map.png", "report.png"):
        path = args.out / name
        print(f"{path}: {path.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
