"""Helpers shared by the host checks (the fixtures are in conftest.py)."""

import functools
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

Setting = Callable[[str], Any]  # the `setting` fixture: a host variable by name

LOOPBACK = {"127.0.0.1", "::1"}
ROLES = Path(__file__).resolve().parents[2] / "ansible" / "roles"


@functools.cache
def role_defaults(role: str) -> dict[str, Any]:
    defaults: dict[str, Any] = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    return defaults


def role_default(name: str) -> Any:
    return role_defaults(name.split("_", 1)[0])[name]


# A plain reference to another setting, "{{ name }}" or "{{ name | default(other) }}".
REFERENCE = r"{{\s*(\w+)\s*(?:\|\s*default\((\w+)\)\s*)?}}"


def host_setting(host: Any, name: str) -> Any:
    """A variable of the host as the inventory sets it, else the role's default. A value
    made of plain references is filled in here; any other expression of the inventory's
    (ansible/group_vars/all.yml derives some from the host's groups) is evaluated by
    Ansible itself, for this host."""
    value = host.ansible.get_variables().get(name)
    from_inventory = value is not None
    if not from_inventory:
        value = role_default(name)
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        if "{" not in re.sub(REFERENCE, "", value):
            value = render(host, value)
        elif from_inventory:
            value = evaluated(host, name)
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        pytest.fail(f"{name} is an expression ({value}): set it in the inventory to verify it")
    return value


# A fact cache for evaluated() alone (the playbooks the tests run keep ansible.cfg's),
# removed when the run ends.
_FACT_CACHE_DIR = tempfile.TemporaryDirectory(prefix="verify-facts-")
FACT_CACHE = {
    "ANSIBLE_CACHE_PLUGIN": "jsonfile",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION": _FACT_CACHE_DIR.name,
}
_hosts_with_facts: set[str] = set()


def evaluated(host: Any, name: str) -> Any:
    """The value Ansible gives the host's variable, with the host's hardware facts as the
    deploy saw them (an expression may count its cores: the app's instances and their
    ports). Read-only: the facts once per host, then a debug task on the controller."""
    hostname = host.ansible.get_variables()["inventory_hostname"]
    with mock.patch.dict(os.environ, FACT_CACHE):
        if hostname not in _hosts_with_facts:
            host.ansible("setup", "gather_subset=!all,hardware", check=False)
            _hosts_with_facts.add(hostname)
        return host.ansible("debug", f"var={name}", check=False)[name]


def inventory_value(host: Any, name: str) -> Any:
    """A variable as the inventory and its vault set it, following plain references
    ("{{ vault_x }}", as ansible/group_vars/all.yml makes them) to the vault's values."""
    variables = host.ansible.get_variables()
    value = variables.get(name)
    while isinstance(value, str) and (reference := re.fullmatch(r"{{\s*(\w+)\s*}}", value)):
        value = variables.get(reference[1])
    return value


def on_the_host_curl(host: Any, port: int, path: str, *options: str) -> str:
    """curl on the host itself (from loopback, on the admin list by default) to the site
    under its canonical name: a command line for host.check_output/run."""
    name = str(host_setting(host, "nginx_server_name"))
    name = f"[{name}]" if ":" in name else name
    return " ".join(
        ["curl -sk", *options, f"--connect-to ::127.0.0.1:{port}", f"https://{name}:{port}{path}"]
    )


def render(host: Any, text: str) -> str:
    """Plain references to other settings filled in, e.g. "/etc/{{ app_name }}", and
    "{{ a | default(b) }}" (a if the inventory sets it, else b)."""

    def value(match: re.Match[str]) -> str:
        name, fallback = match[1], match[2]
        if fallback and host.ansible.get_variables().get(name) is None:
            name = fallback
        return str(host_setting(host, name))

    return re.sub(REFERENCE, value, text)


def app_instance_count(host: Any) -> int:
    value = host.ansible.get_variables().get("app_instances")
    if value is None or "{{" in str(value):
        # The role's default: one instance per core of the host.
        return int(host.check_output("nproc"))
    return int(value)


def app_ports(host: Any) -> list[int]:
    base = int(host_setting(host, "app_port_base"))
    return list(range(base, base + app_instance_count(host)))


def wait_for(condition: Callable[[], bool], seconds: float = 15, step: float = 0.1) -> float | None:
    """Seconds until condition() held (asked every `step` seconds), or None if it did not
    within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    return None


def listening_addresses(host: Any, port: int) -> set[str]:
    """Local addresses with a TCP listener on port, e.g. {"127.0.0.1", "::1"}."""
    addresses = set()
    for spec in host.socket.get_listening_sockets():
        if spec.startswith("tcp://") and spec.rsplit(":", 1)[1] == str(port):
            addresses.add(spec[len("tcp://") :].rsplit(":", 1)[0].strip("[]"))
    return addresses


def controller_address(address: str) -> str:
    """The source address the host sees when the controller talks to it."""
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
    words = route.stdout.split()
    return words[words.index("src") + 1]


@dataclass(frozen=True)
class ApiKeys:
    """API keys from the inventory's vault (never printed): a client's (the deploy's when the
    inventory has none), the deploy's own, and a revoked one if the inventory has one."""

    valid: str
    deploy: str
    revoked: str | None

    def header(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.valid}"}

    @classmethod
    def of(cls, host: Any) -> "ApiKeys":
        """The keys of the host's inventory and vault."""
        entries = inventory_value(host, "app_api_keys") or []
        deploy = str(inventory_value(host, "app_deploy_api_key"))
        valid = [str(entry["key"]) for entry in entries if not entry.get("revoked")]
        revoked = [str(entry["key"]) for entry in entries if entry.get("revoked")]
        return cls(valid[0] if valid else deploy, deploy, revoked[0] if revoked else None)


@dataclass(frozen=True)
class AppLimits:
    """The bounds the deployed app declares in its OpenAPI schema (the `app_limits` fixture)."""

    max_id: int  # the largest message id (and `before` cursor) it accepts
    message_max_length: int  # in characters
    max_page: int  # the largest `limit` of GET /messages

    @classmethod
    def from_schema(cls, schema: dict[str, Any]) -> "AppLimits":
        paths = schema["paths"]
        body = paths["/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        return cls(
            max_id=int(parameter(paths["/messages/{message_id}"]["get"], "message_id")["maximum"]),
            message_max_length=int(resolve(schema, body)["properties"]["message"]["maxLength"]),
            max_page=int(parameter(paths["/messages"]["get"], "limit")["maximum"]),
        )

    def fill(self, text: str) -> str:
        """`text` with {max_id}, {max_id_plus_1}, {max_page} and {max_page_plus_1} filled in,
        for test cases written down before the host is known."""
        return text.format(
            max_id=self.max_id,
            max_id_plus_1=self.max_id + 1,
            max_page=self.max_page,
            max_page_plus_1=self.max_page + 1,
        )


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema of an operation's parameter."""
    schemas = [p["schema"] for p in operation.get("parameters", []) if p["name"] == name]
    assert schemas, f"no parameter {name!r} in {operation.get('operationId')}"
    return dict(schemas[0])


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its "$ref" (e.g. "#/components/schemas/MessageIn") points to."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target
