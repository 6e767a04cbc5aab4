"""The host firewall's input policy: live rules when they may be listed, else the saved ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.host_batch import live_output, optional_text, prefetch_host, strip_comment
from audit.transports.reads import HostCommand, HostReads

SAVED_NFTABLES = ("/etc/nftables.conf",)
SAVED_IPTABLES = ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables")
NFT_RULESET = HostCommand(("nft", "list", "ruleset"), "/usr/sbin/nft", needs_root=True)
IPTABLES_RULES = HostCommand(("iptables-save",), "/usr/sbin/iptables-save", needs_root=True)
READS = HostReads(
    purpose="the firewall's input policy, live and saved",
    files=(*SAVED_NFTABLES, *SAVED_IPTABLES),
    commands=(NFT_RULESET, IPTABLES_RULES),
)
# A last rule that matches everything and refuses it: the chain denies by default.
NFT_DENY_ALL = re.compile(r"(?:counter\s+)?(?:drop|reject)(?:\s+with\s+.*)?")
IPTABLES_DENY_ALL = re.compile(r"-A INPUT -j (?:DROP|REJECT)(?:\s+--reject-with\s+\S+)?")


@dataclass(frozen=True)
class FirewallFacts:
    """Whether incoming traffic is denied unless a rule allows it, and what rules allow."""

    source: str                 # "nft list ruleset", "iptables-save", a saved file, or "none"
    input_policy: str | None    # the input chain's policy ("drop", "accept"...), None: no chain
    ends_in_deny: bool          # the chain's last rule drops or rejects everything left
    allowed: list[str]          # accepted services, as written ("tcp dport 22")
    location: str | None


def firewall_facts(context: TargetContext) -> FirewallFacts:
    """The input policy from nft or iptables (live), else /etc/nftables.conf or rules.v4."""
    transport = prefetch_host(context)
    for command, parse in ((NFT_RULESET, parse_nft), (IPTABLES_RULES, parse_iptables)):
        live = live_output(transport, command.argv)
        if live is not None:
            facts = parse(live, command.text)
            if facts.input_policy is not None:
                return facts
    for paths, parse in ((SAVED_NFTABLES, parse_nft), (SAVED_IPTABLES, parse_iptables)):
        for path in paths:
            text = optional_text(transport, path)
            if text is not None:
                return parse(text, path)
    return FirewallFacts("none", None, False, [], None)


def parse_nft(text: str, source: str) -> FirewallFacts:
    """The first `hook input` filter chain of an nftables ruleset."""
    depth, in_input, policy, location = 0, False, None, None
    rules: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if in_input and line == "}" and depth == 2:
            break
        if not in_input and re.search(r"type\s+filter\s+hook\s+input\b", line):
            in_input, location = True, f"{source}:{number}"
            found = re.search(r"policy\s+(\w+)", line)
            policy = found.group(1) if found else "accept"
        elif in_input and line and not line.startswith(("type ", "policy ")):
            rules.append(line)
        elif in_input and line.startswith("policy "):
            policy = line.split()[1].rstrip(";")
        depth += line.count("{") - line.count("}")
    allowed = [_nft_service(rule) for rule in rules if re.search(r"\baccept\b", rule)
               and "dport" in rule]
    ends_in_deny = bool(rules) and bool(NFT_DENY_ALL.fullmatch(rules[-1]))
    return FirewallFacts(source, policy if in_input else None, ends_in_deny,
                         [item for item in allowed if item], location)


def _nft_service(rule: str) -> str:
    found = re.search(r"\b(tcp|udp)\s+dport\s+(\{[^}]*\}|\S+)", rule)
    return f"{found.group(1)} dport {found.group(2)}" if found else ""


def parse_iptables(text: str, source: str) -> FirewallFacts:
    """The INPUT chain of iptables-save output (or a saved rules file)."""
    policy, location = None, None
    rules: list[str] = []
    in_filter = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if line.startswith("*"):
            in_filter = line == "*filter"
        elif in_filter and line.startswith(":INPUT "):
            policy, location = line.split()[1].lower(), f"{source}:{number}"
        elif in_filter and line.startswith("-A INPUT "):
            rules.append(line)
    allowed = []
    for rule in rules:
        ports = re.search(r"--dports?\s+(\S+)", rule)
        protocol = re.search(r"-p\s+(\w+)", rule)
        if ports and re.search(r"-j\s+ACCEPT\b", rule):
            allowed.append(f"{protocol.group(1) if protocol else 'any'} dport {ports.group(1)}")
    ends_in_deny = bool(rules) and bool(IPTABLES_DENY_ALL.fullmatch(rules[-1]))
    return FirewallFacts(source, policy, ends_in_deny, allowed, location)
