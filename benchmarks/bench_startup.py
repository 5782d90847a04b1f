"""`vcyclectl list --output json` start-up against the floor the framework sets,
`python -c "import typer, yaml"` (aim: ratio <= 1.5). Both run as fresh processes, 15 times
each, interleaved so machine noise hits both alike; medians are compared. Bytecode is
compiled first, as `pip install` does."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
state_dir: state
spaces:
  demo.local:
    cloud: local
    processors_limit: 20
    machinetypes: {a: {}, b: {target_share: 3}}
  cloudy.gce:
    cloud: gce
    processors_limit: 4
    gce: {project: p, zones: [europe-west2-a], machine_types: [e2-standard-2], image: img}
    machinetypes: {c: {}}
"""


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    exe = Path(sys.executable)
    # An installed package has its bytecode compiled by pip, as typer's is; an editable
    # checkout under PYTHONDONTWRITEBYTECODE would recompile every module on every start.
    import vcyclectl

    subprocess.run([str(exe), "-m", "compileall", "-q", str(Path(vcyclectl.__file__).parent)],
                   check=True)
    vcyclectl = str(exe.parent / "vcyclectl")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(CONFIG)
        subprocess.run([vcyclectl, "--config", str(cfg), "reconcile", "demo.local"], check=True,
                       capture_output=True)
        floor_cmd = [str(exe), "-c", "import typer, yaml"]
        list_cmd = [vcyclectl, "--config", str(cfg), "list", "--output", "json"]
        bare_cmd = [str(exe), "-c", "pass"]
        floors, lists, bares = [], [], []
        for _ in range(15):
            bares.append(timed(bare_cmd))
            floors.append(timed(floor_cmd))
            lists.append(timed(list_cmd))
    bare, floor, listing = (statistics.median(x) for x in (bares, floors, lists))
    print(f"python -c pass:                    {bare * 1000:6.1f} ms")
    print(f"python -c 'import typer, yaml':    {floor * 1000:6.1f} ms")
    print(f"vcyclectl list --output json:      {listing * 1000:6.1f} ms (20 machines, 2 spaces)")
    print(f"ratio list / floor: {listing / floor:.2f} (aim <= 1.5)")


if __name__ == "__main__":
    main()
