"""Bad or unusual inputs (issue 13, items 8-18): a clear message or a warning, never a
silently wrong answer.  Each test builds its input from the demo data or generates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from planner._errors import NormsError, ScenarioError
from planner.norms import load_rules
from planner.pipeline import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def billion_laughs(top_key: str = "name") -> str:
    """A YAML document under 600 bytes whose nested aliases expand to 9**9 strings."""
    doc = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for key in "bcdefghi":
        doc += f"{key}: &{key} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = key
    return doc + f"{top_key}: *i\n"


# --------------------------------------------------------------------------- 16: YAML aliases
def test_billion_laughs_scenario_is_refused_before_anything_expands(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    assert path.stat().st_size < 600
    # in a child process limited to 1 GiB of address space: expanding the aliases (as the
    # scenario loader's key-line walk did) dies of MemoryError there instead of the machine
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from planner.pipeline import load_scenario\n"
        "from planner._errors import ScenarioError\n"
        "try:\n"
        f"    load_scenario({str(path)!r})\n"
        "except ScenarioError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "uses a YAML alias (`*a` at line 2)" in proc.stdout
    assert "not allowed in a scenario" in proc.stdout


def test_scenario_alias_is_refused_with_its_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nlayers:\n  population: &p a.csv\n  facilities: *p\n",
                    encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"uses a YAML alias \(`\*p` at line 4\)"):
        load_scenario(path)


def test_rule_file_alias_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("jurisdiction: {zh: 甲, en: A}\n" + billion_laughs("rules"), encoding="utf-8")
    with pytest.raises(NormsError, match=r"rules\.yaml uses a YAML alias \(`\*a` at line 3\).*"
                                         r"not allowed in a rule file"):
        load_rules(path)
