"""The command line starts without the heavy libraries: ``--help`` of every command imports no torch, and
``--version`` names every package."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "scipy", "matplotlib", "pandas", "deepspeed", "nvidia.dali")


def _imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('MODULES', *sorted(sys.modules))"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    modules = out[out.rindex("MODULES"):].split()[1:]
    return {m for m in HEAVY if m in modules}


def test_importing_the_command_line_modules_pulls_in_nothing_heavy():
    assert _imported("import contrasting.eval.cli, contrasting.encoders.cli, contrasting.eval.analysis.cli") == set()
    assert _imported("import contrasting.eval, contrasting.encoders") == set()
    assert _imported("import contrasting.data, contrasting.data.lazy") == set()


def test_the_analysis_imports_no_torch():
    code = ("import contrasting.eval.analysis.results, contrasting.eval.analysis.stats, "
            "contrasting.eval.analysis.claims, contrasting.eval.analysis.plots, contrasting.eval.analysis.report, "
            "contrasting.eval.analysis.cli, contrasting.eval.catalog.metric_stats")
    assert _imported(code) & {"torch", "torchvision", "deepspeed", "nvidia.dali"} == set()


@pytest.mark.parametrize("command", ["", "demo", "eval", "export", "grid", "inspect-checkpoint", "pretrain",
                                     "report", "tasks"])
def test_help_of_every_command_imports_no_torch(command):
    argv = [command, "--help"] if command else ["--help"]
    code = ("import sys\nfrom contrasting.encoders.cli import main\ntry:\n    main(" + repr(argv) + ")\n"
            "except SystemExit:\n    pass")
    assert _imported(code) == set()


def test_version_names_every_package_and_the_commit():
    from contrasting.encoders.cli import main
    from contrasting.encoders.provenance import PROJECT_DISTRIBUTIONS as DISTRIBUTIONS

    out = subprocess.run([sys.executable, "-m", "contrasting.encoders", "--version"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert all(d in out for d in DISTRIBUTIONS) and "git " in out
    assert main(["--version"]) == 0
