"""`mis-audit init`: a commented inventory skeleton that validates as it is.

Every field of the inventory appears, active or commented out, with what it means; the
`evidence:` block lists each document key the chosen profile's evidence checks read, with the
controls that need it. Nothing is contacted: the scope is empty until the user fills it.
Field by field: docs/inventory.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from audit.errors import InputError
from audit.outputs import OutputError, write_atomically
from audit.profiles import ResolvedProfile, load_profiles
from audit.registry import default_registry
from audit.run import DEFAULT_PROFILE
from audit.usage import expected_documents

_err = Console(stderr=True)

HEADER = """\
# mis-audit inventory for profile {profile}: what is audited and how it is reached.
# Written by `mis-audit init`; every field is in docs/inventory.md.
# Check it with `mis-audit validate {name}`.
# Secrets never go in this file: credentials name an environment variable or a file.
organisation: CHANGE ME (the organisation audited; it names the history series)
system: CHANGE ME (the MIS audited, with its version)
# site: main-building     # the site (network segment) this scanner reaches; for per-site
#                         # runs that `mis-audit merge` joins into one report

# Nothing outside the scope is ever contacted or read: a target, URL or path outside it is
# refused before anything runs. Empty, so this skeleton contacts nothing.
scope:
  networks: []            # e.g. [10.20.0.0/24]
  hosts: []               # host names, e.g. [mis.clinic.example]
  paths: []               # directories that may be read, e.g. [/srv/share]

# Credentials by name, referenced by targets (`ssh:`, `services[].credential`). A credential
# nothing uses is reported by `mis-audit run`.
credentials:
  ops-ssh:
    type: ssh
    user: auditor                       # the read-only audit account
    # key_file: ~/.ssh/audit_ed25519    # default: the ssh-agent's keys
    # known_hosts: ~/.ssh/known_hosts   # the default
    # accept_new_host_keys: false       # true: trust and record a first key, never a changed one
    # sudo: false                       # true: `sudo -n` for the reads that need root
    # port: 22
  db-login:
    type: basic
    user: auditor
    password_env: MIS_DB_PASSWORD       # or password_file: secrets/db.password
  # fhir-token: {{type: token, token_env: FHIR_TOKEN}}   # or token_file: secrets/fhir.token

trust:
  ca_file: null           # PEM file a "valid certificate" must chain to (null: system store)

# What is audited. Roles decide which checks apply: host, db, web, pacs, hl7, fhir,
# fileshare. Service kinds and their default ports: docs/inventory.md#service-kinds.
targets: []
#  - name: app-host                      # unique, shown in the report
#    address: 10.20.0.40                 # must be inside scope.networks or scope.hosts
#    roles: [host]
#    ssh: ops-ssh                        # host configuration read over SSH
#    transport: ssh                      # local | ssh | offline (default from ssh/root)
#    data_paths: [/opt/medinfo/storage]  # patient data the host's own config does not name
#    admin_groups: [his-ops]             # administrators, beside groups named *admin*
#    site: lab-building                  # its own site, when not the inventory's
#  - name: db
#    address: 10.20.0.20
#    roles: [db]
#    services:                           # standard ports are found by the scan
#      - {{kind: postgresql, port: 5433, tls: true}}
#      - {{kind: mariadb, port: 3306, credential: db-login}}   # read-only audit account
#      - {{kind: redis, port: 6379, credential: db-login, app_roles: [medinfo]}}
#  - name: portal
#    address: 10.20.0.10
#    roles: [web]
#    urls: ["https://10.20.0.10/"]
#    login:                              # opt-in brute-force probe, designated test account
#      url: https://10.20.0.10/login
#      username: audit.probe
#      password_field: password
#      username_field: username
#      max_attempts: 8
#  - name: pacs
#    address: 10.20.0.30
#    roles: [pacs]
#    services: [{{kind: dicom, port: 104, ae_title: CLINICPACS}}, {{kind: pacs-http, port: 8042}}]
#    vendor_defaults: false              # opt-in: try the vendor's published default logins
#  - {{name: lis-hl7, address: 10.20.0.31, roles: [hl7], services: [{{kind: hl7, port: 2575}}]}}
#  - {{name: fhir, address: 10.20.0.32, roles: [fhir], urls: ["https://10.20.0.32/fhir/"]}}
#  - {{name: share, roles: [fileshare], paths: [/srv/share]}}   # scanned for personal data
#  - {{name: image, roles: [host], root: /mnt/app-host-image}}  # offline: a copy of a host's files

# Evidence documents, by the keys the profile's evidence checks read. A key with no document
# on file is `manual` in the report; a document may carry `date:` (default: the file's
# modification time) and `issued_by:`. Remove the keys you do not use.
"""


def skeleton(profile: ResolvedProfile, name: str = "inventory.yaml") -> str:
    """The commented skeleton for `profile`."""
    documents = expected_documents(profile)
    lines = [HEADER.format(profile=profile.id, name=name).rstrip("\n")]
    if not documents:
        lines.append("evidence: {}                # this profile reads no evidence document")
    else:
        lines.append("evidence:")
        for key, controls in documents.items():
            lines.append(f"  {key}:".ljust(34) + f" # needed by {', '.join(controls)}")
            lines.append(f"    file: evidence/{key}.pdf")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("init")
    def init(profile: Annotated[list[str] | None, typer.Option(
                 "--profile", "-p", help="Profile id or path whose evidence keys to list; "
                                         "repeat to combine.")] = None,
             output: Annotated[Path | None, typer.Option(
                 "--output", "-o", help="Write here (default: print it).")] = None,
             force: Annotated[bool, typer.Option(
                 "--force", help="Replace the output file if it exists.")] = False) -> None:
        """Write a commented inventory skeleton: every field, and the profile's evidence keys.

        It validates as it is and contacts nothing until you fill its scope."""
        try:
            resolved = load_profiles(profile or [DEFAULT_PROFILE], default_registry())
        except InputError as error:
            for problem in error.problems:
                _err.print(f"error: {problem}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        if output is None:
            typer.echo(skeleton(resolved), nl=False)
            return
        if output.exists() and not force:
            _err.print(f"error: {output} exists (use --force to replace it)", highlight=False,
                       markup=False, soft_wrap=True)
            raise typer.Exit(2)
        try:
            write_atomically(output, skeleton(resolved, output.name))
        except OutputError as error:
            _err.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(4) from None
        _err.print(f"wrote {output}", highlight=False, markup=False, soft_wrap=True)
