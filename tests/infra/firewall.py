"""The firewall, read as what it does: the accept rules of the project's nftables table as
sets of matches (order and spelling aside), and probes from the controller."""

import ipaddress
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hostcheck import Setting, listening_addresses, wait_for

# A rule as what it matches and what it does: ({(field, operator, values), ...}, verdict).
Rule = tuple[frozenset[tuple[str, str, frozenset[str]]], str]
VERDICTS = ("accept", "drop", "reject", "jump", "goto", "return", "queue", "continue")


def reachable(address: str, port: int) -> bool:
    """Whether a TCP connection from the controller gets through (a drop times out)."""
    try:
        with socket.create_connection((address, port), timeout=1.5):
            return True
    except OSError:
        return False


def values(right: Any) -> frozenset[str]:
    """The right side of an nft JSON match as a set of strings: "lo", {"set": [22, 80]},
    ["established", "related"], {"prefix": {"addr": "10.0.0.0", "len": 24}}."""
    if isinstance(right, dict) and "set" in right:
        right = right["set"]
    items = right if isinstance(right, list) else [right]
    out = set()
    for item in items:
        if isinstance(item, dict) and "prefix" in item:
            item = f"{item['prefix']['addr']}/{item['prefix']['len']}"
        out.add(item if isinstance(item, str | int) else json.dumps(item, sort_keys=True))
    return frozenset(str(item) for item in out)


def field_name(left: dict[str, Any]) -> str:
    if "meta" in left:
        return str(left["meta"]["key"])
    if "ct" in left:
        return f"ct {left['ct']['key']}"
    if "payload" in left:
        return f"{left['payload']['protocol']} {left['payload']['field']}"
    return json.dumps(left, sort_keys=True)  # anything else: never equal to an expected rule


def summarise(expressions: list[dict[str, Any]]) -> Rule:
    matches, verdict = set(), "continue"
    for expression in expressions:
        [(kind, body)] = expression.items()
        if kind == "match":
            # A single value and a set of values are both written "==" or "in".
            operator = "==" if body["op"] in ("==", "in") else body["op"]
            matches.add((field_name(body["left"]), operator, values(body["right"])))
        elif kind in VERDICTS:
            verdict = kind if kind not in ("jump", "goto") else f"{kind} {body['target']}"
        elif kind != "counter":
            matches.add((json.dumps(expression, sort_keys=True), "", frozenset()))
    return frozenset(matches), verdict


def ruleset(host: Any, table: str) -> tuple[list[dict[str, Any]], list[Rule]]:
    """The chains of the table and the rules of its chains, from `nft -j` on the host."""
    listing = json.loads(host.check_output("nft -j list table inet %s", table))["nftables"]
    chains = [item["chain"] for item in listing if "chain" in item]
    rules = [summarise(item["rule"]["expr"]) for item in listing if "rule" in item]
    return chains, rules


def port_range(spec: int | str) -> range:
    """A port setting, 5432 or "8001-8004", as the ports it covers."""
    first, _, last = str(spec).partition("-")
    return range(int(first), int(last or first) + 1)


def port_match(spec: int | str) -> str:
    """A port setting as nft's JSON writes it: 8001, or a range of two or more ports."""
    ports = port_range(spec)
    if len(ports) == 1:
        return str(ports[0])
    return json.dumps({"range": [ports[0], ports[-1]]}, sort_keys=True)


def expected_accepts(setting: Setting) -> set[Rule]:
    """The accept rules the base role's settings ask for, and no other."""

    def rule(*matches: tuple[str, str, frozenset[str]]) -> Rule:
        return frozenset(matches), "accept"

    allowed = {
        rule(("iif", "==", frozenset({"lo"}))),
        rule(("ct state", "==", frozenset({"established", "related"}))),
        rule(("l4proto", "==", frozenset({"icmp", "ipv6-icmp"}))),
        # DHCPv6 replies, from a link-local server port to the client port.
        rule(
            ("ip6 saddr", "==", frozenset({"fe80::/10"})),
            ("udp sport", "==", frozenset({"547"})),
            ("udp dport", "==", frozenset({"546"})),
        ),
        rule(("tcp dport", "==", values(setting("base_firewall_allowed_tcp_ports")))),
    }
    for source in setting("base_firewall_allowed_sources"):
        network = ipaddress.ip_network(source["source"])
        # nft writes a single address without its /32 or /128.
        whole = network.prefixlen == network.max_prefixlen
        saddr = str(network.network_address if whole else network)
        family = "ip6" if network.version == 6 else "ip"
        allowed.add(
            rule(
                (f"{family} saddr", "==", frozenset({saddr})),
                ("tcp dport", "==", frozenset({port_match(source["port"])})),
            )
        )
    return allowed


def free_port(host: Any, avoid: set[int]) -> int:
    """A TCP port nothing listens on and the firewall does not list."""
    sockets = host.socket.get_listening_sockets()
    taken = {int(spec.rsplit(":", 1)[1]) for spec in sockets if spec.startswith("tcp://")}
    return next(port for port in range(18080, 19080) if port not in taken | avoid)


@contextmanager
def listener_on_all_addresses(host: Any, port: int) -> Iterator[None]:
    """A transient unit on the host that accepts TCP connections on 0.0.0.0:port and serves
    nothing (the kernel completes the handshake); stopped afterwards, and after 120 s anyway."""
    unit = f"firewall-probe-{port}"
    program = (
        f"import socket, time; server = socket.create_server(('0.0.0.0', {port})); time.sleep(120)"
    )
    host.check_output(
        "systemd-run --unit=%s --collect --quiet -p DynamicUser=yes -p RuntimeMaxSec=120 "
        "/usr/bin/python3 -c %s",
        unit,
        program,
    )
    try:
        all_addresses = "0.0.0.0"  # noqa: S104 - what the probe is about
        assert wait_for(lambda: all_addresses in listening_addresses(host, port)), "no listener"
        yield
    finally:
        host.run("systemctl stop %s", f"{unit}.service")
