"""The built-in checks. The registry collects the modules listed here, in this order; a
third-party package adds its own through the `mis_audit.checks` entry-point group.
"""

CHECK_MODULES: tuple[str, ...] = (
    "checks.host",
    "checks.evidence",
    "checks.hostsys",
    "checks.hostdb",
    "checks.tls",
    "checks.web",
    "checks.pacs",
    "checks.hl7",
    "checks.fhir",
    "checks.net",
    "checks.db",
    "checks.dbreview",
    "checks.data",
)
