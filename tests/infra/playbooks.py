"""Running the project's playbooks from the tests, as a user would (the same inventory
and vault as the tests' hosts)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(
    inventory: str, playbook: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook -i INVENTORY ansible/PLAYBOOK ARGUMENTS..., its output captured."""
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, f"ansible/{playbook}", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
