"""Run a script as a user would, with its output folders moved out of the checkout.

    python tests/isolated_script.py OUTPUT_DIR training_script_cora.py --num_of_epochs 5 ...

The subprocess tests use it for Ctrl-C/SIGTERM and for running printed resume commands."""

import runpy
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from utils import paths  # noqa: E402

output_dir, script = Path(sys.argv[1]), sys.argv[2]
paths.CHECKPOINTS_DIR = output_dir / "checkpoints"
paths.BINARIES_DIR = output_dir / "binaries"
paths.RUNS_DIR = output_dir / "runs"
sys.argv = [script, *sys.argv[3:]]
runpy.run_path(str(PROJECT_ROOT / script), run_name="__main__")
