"""One line per test case of a pytest junit XML file: outcome, name, and the values it recorded with
``record_property`` (the measured agreement figures of the DALI tests, for example).

Run: ``python bench/junit_table.py FILE.xml [...]``
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def rows(path: str) -> list[str]:
    """``outcome name key=value ...`` for every ``testcase`` element of the junit file ``path``."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        props = " ".join(f"{p.get('name')}={float(p.get('value')):.4g}" if _is_number(p.get("value"))
                         else f"{p.get('name')}={p.get('value')}" for p in case.iter("property"))
        out.append(f"{outcome:7s} {case.get('name')} {props}".rstrip())
    return out


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


if __name__ == "__main__":
    for f in sys.argv[1:]:
        print("\n".join(rows(f)))
