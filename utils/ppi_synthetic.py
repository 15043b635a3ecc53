"""`python -m utils.ppi_synthetic` (PPI-format generated data), as it was typed before the datasets had a package:
the code is utils/datasets/ppi_synthetic.py, and `python -m utils.datasets.ppi_synthetic` is the same command."""

from utils.datasets.ppi_synthetic import main

if __name__ == "__main__":
    main()
