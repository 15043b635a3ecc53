"""The suite's own promises: it blames itself only for files that can be its own."""

from conftest import blame


def test_a_users_run_during_the_tests_is_not_blamed_on_the_suite_outside_ci():
    added = ["models/binaries/arch_citeseer.pth", "models/checkpoints/arch_citeseer/last.pth", "data/planetoid/x",
             "models/stray.pth", "utils/leak.txt"]
    suites, users = blame(added, in_ci=False)
    assert suites == ["models/stray.pth", "utils/leak.txt"]
    assert users == added[:3]
    assert blame(added, in_ci=True) == (added, [])  # in CI nothing else runs: every new file is the suite's
