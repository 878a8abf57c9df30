#!/usr/bin/env python3
"""The "Role Variables" section of each role's README, made from the role itself.

The variables, their types and descriptions come from ``meta/argument_specs.yml`` (the
``main`` entry point), their defaults from ``defaults/main.yml``. So the README, the
argument specs and the defaults can never disagree:

    scripts/role_docs.py           rewrite the section in every ansible/roles/*/README.md
    scripts/role_docs.py --check   fail, naming the role, if any README differs (make lint)

A default that is neither in the argument specs nor documented elsewhere fails too.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROLES = Path(__file__).resolve().parent.parent / "ansible" / "roles"
BEGIN = "<!-- role variables: made by scripts/role_docs.py from meta/argument_specs.yml -->"
END = "<!-- end of role variables -->"


def inline(value: Any) -> str:
    """A default as one line of YAML, in backquotes."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    text = text.strip().removesuffix("...").strip()
    return f"`{text}`" if text else "`''`"


def kind(option: dict[str, Any]) -> str:
    name = str(option.get("type", "str"))
    if name == "list" and "elements" in option:
        name = f"list of {option['elements']}"
    return name


def suboptions(options: dict[str, Any]) -> str:
    """The keys of each item of a list of dicts (or of a dict), in one table cell."""
    parts = []
    for name, option in options.items():
        required = ", required" if option.get("required") else ""
        description = str(option.get("description", "")).rstrip(".")
        parts.append(f"`{name}` ({kind(option)}{required}): {description}")
    return "<br>Each item: " + "; ".join(parts) + "."


def table(role: Path) -> str:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, Any] = specs["argument_specs"]["main"].get("options") or {}
    defaults_file = role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    undocumented = sorted(set(defaults or {}) - set(options))
    if undocumented:
        raise SystemExit(
            f"{role.name}: defaults/main.yml sets {', '.join(undocumented)}, "
            "which meta/argument_specs.yml does not describe"
        )
    if not options:
        return f"{BEGIN}\nNone.\n{END}"
    rows = [BEGIN, "| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in options.items():
        if name in (defaults or {}):
            default = inline(defaults[name])
        else:
            default = "required" if option.get("required") else "unset"
        description = str(option.get("description", "")).replace("|", "\\|")
        if option.get("options"):
            description += suboptions(option["options"])
        rows.append(f"| `{name}` | {kind(option)} | {default} | {description} |")
    rows.append(END)
    return "\n".join(rows)


def with_table(readme: str, role: Path) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{role.name}: README.md has no generated Role Variables section")
    before, rest = readme.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return before + table(role) + after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a README differs")
    check = parser.parse_args().check
    stale = []
    for role in sorted(path.parent.parent for path in ROLES.glob("*/meta/argument_specs.yml")):
        readme_file = role / "README.md"
        if not readme_file.exists():
            stale.append(f"{role.name}: no README.md")
            continue
        readme = readme_file.read_text()
        wanted = with_table(readme, role)
        if wanted != readme:
            if check:
                stale.append(f"{role.name}: README.md's Role Variables differ from the role")
            else:
                readme_file.write_text(wanted)
                print(f"rewrote {readme_file.relative_to(ROLES.parent.parent)}")
    for problem in stale:
        print(f"error: {problem} (run scripts/role_docs.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
