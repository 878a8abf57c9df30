#!/usr/bin/env python3
"""The digests by which a deploy recognises the local inventories' insecure secrets.

Every inventory with a committed `vault-password-INSECURE-local-only.txt` holds secrets
that anyone can read. ansible/preflight.yml refuses to run with any of them against a host
that is not a local test host; it recognises them by their SHA-256 digests, listed in
ansible/inventories/insecure-local-secrets.sha256 (a file, not a variable: no `-e` can
switch the check off).

    scripts/local_vault_digests.py           write the list from the local vaults
    scripts/local_vault_digests.py --check   fail if the list misses one (make lint)
"""

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

INVENTORIES = Path(__file__).resolve().parent.parent / "ansible" / "inventories"
DIGESTS = INVENTORIES / "insecure-local-secrets.sha256"
PASSWORD_FILE = "vault-password-INSECURE-local-only.txt"
# Not secrets: flags and names that live in a vault for convenience.
NOT_SECRET = {"vault_insecure_local_only"}


def local_secrets() -> set[str]:
    secrets = set()
    for password in sorted(INVENTORIES.glob(f"*/{PASSWORD_FILE}")):
        for vault in sorted((password.parent / "group_vars").glob("*/vault.yml")):
            plain = subprocess.run(
                ["ansible-vault", "view", "--vault-password-file", str(password), str(vault)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            for name, value in (yaml.safe_load(plain) or {}).items():
                if name.startswith("vault_") and name not in NOT_SECRET:
                    secrets.update(secret_values(value))
    return secrets


def secret_values(value: object) -> list[str]:
    """A vault value's secrets: itself, or the `key` of each item of a list of API keys."""
    if isinstance(value, list):
        return [str(item["key"]) for item in value if isinstance(item, dict) and "key" in item]
    return [str(value)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the list misses one")
    digests = sorted(hashlib.sha256(secret.encode()).hexdigest() for secret in local_secrets())
    if parser.parse_args().check:
        listed = set(DIGESTS.read_text().split()) if DIGESTS.exists() else set()
        missing = set(digests) - listed
        if missing or not digests:
            print(f"error: {DIGESTS.name} misses {len(missing)} local secret(s): "
                  "run scripts/local_vault_digests.py", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    DIGESTS.write_text("\n".join(digests) + "\n")
    print(f"wrote {len(digests)} digests to {DIGESTS.relative_to(INVENTORIES.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
