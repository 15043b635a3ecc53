"""Every folder the project reads or writes by default, in one place.

Functions read these names when they are called (`paths.CHECKPOINTS_DIR`, not a copy taken at import), so a
test or a tool can point them elsewhere by setting the attribute here.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = PROJECT_ROOT / "data"                        # datasets, unless --data_dir or $GAT_DATA_DIR
CHECKPOINTS_DIR = PROJECT_ROOT / "models" / "checkpoints"  # <run>/last.pth and <run>/epoch_<N>.pth
BINARIES_DIR = PROJECT_ROOT / "models" / "binaries"        # <run>.pth: the kept model of a finished run
PRETRAINED_CORA = PROJECT_ROOT / "models" / "pretrained" / "cora_gat_seed0.pth"  # committed, to look inside
RUNS_DIR = PROJECT_ROOT / "runs"                           # TensorBoard logs, <run>/
FIGURES_DIR = Path(os.environ.get("GAT_FIGURES_DIR") or DATA_DIR / "visualizations")  # or --output_dir
PROFILING_CACHE_DIR = DATA_DIR / "profiling"               # playground.py profile_gat's cached results
