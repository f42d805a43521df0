"""The example at the top of packages/data/README.md runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "packages" / "data" / "README.md"


def test_readme_example_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    x1, x2 = namespace["x1"], namespace["x2"]
    assert x1.shape == x2.shape == (4, 3, 32, 32)
