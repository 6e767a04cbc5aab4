"""Where a host keeps patient data: the locations the inventory and the profile name, those
the database and PACS servers' own configuration names, and conventional MIS locations.

Each location says how it was found. One that does not exist on the host is not judged: a
named or configured one is kept as absent, for the evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pydantic import Field

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.host_batch import dir_files, prefetch_host, present_texts
from audit.facts.host_databases import DatabaseConfigs, database_configs
from audit.messages import Message, says
from audit.registry import Params
from audit.transports.base import DirEntry, Transport
from audit.transports.reads import HostReads, Prefetch
from audit.vocabulary import Reason

ORTHANC_CONFIG_DIR = "/etc/orthanc"
READS = HostReads(purpose="where the PACS keeps its images (Orthanc's configuration)",
                  config_dirs=(ORTHANC_CONFIG_DIR,))
ORTHANC_KEYS = ("StorageDirectory", "IndexDirectory")
DEFAULT_CONVENTIONAL = ["/srv/mis", "/var/lib/mis", "/opt/mis/data", "/var/lib/orthanc/db"]
MYSQL_DEFAULT_DATADIR = "/var/lib/mysql"
# JSON strings, kept whole, or the comments Orthanc's configuration allows.
_JSON_STRING_OR_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|/\*.*?\*/|//[^\n]*', re.DOTALL)


class DataLocationParams(Params):
    """Where patient data lives: `data_paths` are always judged (with the target's own
    `data_paths` from the inventory); `conventional_paths` (shell patterns allowed) are
    judged where they exist, beside the data directories the servers' configuration names."""

    data_paths: list[str] = Field(default_factory=list)
    conventional_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_CONVENTIONAL))

    def locations(self) -> DataLocationParams:
        """These settings alone: the key under which every data check shares one discovery."""
        return DataLocationParams(data_paths=self.data_paths,
                                  conventional_paths=self.conventional_paths)


@dataclass(frozen=True)
class DataLocation:
    """A directory (or file) holding patient data, and every way it was found."""

    path: str
    found_by: tuple[str, ...]

    def describe(self) -> str:
        """The location and its sources, for the evidence."""
        return f"{self.path} ({'; '.join(self.found_by)})"


@dataclass(frozen=True)
class DataLocations:
    """The locations present on the host, those named or configured but absent, and the
    sources that could not be read."""

    present: list[DataLocation]
    absent: list[DataLocation]
    unread: list[str]

    def evidence(self) -> dict[str, list[str]]:
        """How the locations were found, for every data check's evidence."""
        return {"data_locations": [location.describe() for location in self.present],
                "absent": [location.describe() for location in self.absent],
                "not_read": self.unread}

    def none_found(self, conventional: list[str]) -> Message:
        """Why no location is judged, and how to name one."""
        named = "; ".join(location.describe() for location in self.absent)
        looked = ", ".join(conventional)
        if named:
            return says("no patient-data location found on this host (absent: {absent}); "
                        "looked for {paths} and the data directories of PostgreSQL, "
                        "MySQL/MariaDB, Redis and Orthanc. If it holds data elsewhere, list it "
                        "in the target's data_paths", absent=named, paths=looked)
        return says("no patient-data location found on this host; looked for {paths} and the "
                    "data directories of PostgreSQL, MySQL/MariaDB, Redis and Orthanc. If it "
                    "holds data elsewhere, list it in the target's data_paths", paths=looked)


@dataclass
class _Candidates:
    """Locations gathered so far, each with every way it was found."""

    found: dict[str, list[str]] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)  # by the user or a server: absence is news
    unread: list[str] = field(default_factory=list)

    def add(self, path: str, how: str, named: bool) -> None:
        normal = _normal(path)
        if normal is None:
            return
        if how not in self.found.setdefault(normal, []):
            self.found[normal].append(how)
        if named:
            self.named.add(normal)


def data_locations(context: TargetContext, params: DataLocationParams) -> DataLocations:
    """Every candidate location, with how it was found, split by whether it exists."""
    transport = prefetch_host(context)
    candidates = _Candidates()
    for path in context.target.data_paths:
        candidates.add(path, "inventory data_paths", True)
    for path in params.data_paths:
        candidates.add(path, "profile data_paths", True)
    _add_configured(context, transport, candidates)
    plain = [path for path in (*candidates.found, *params.conventional_paths)
             if not _is_pattern(path)]
    patterns = tuple(path for path in params.conventional_paths if _is_pattern(path))
    # One round trip: whether each exists (its parent's listing) and, for the permission
    # check, what it holds and whether others can reach it (the grandparent's listing).
    parents = [str(PurePosixPath(path).parent) for path in plain]
    holders = [str(PurePosixPath(parent).parent) for parent in parents]
    transport.prefetch(Prefetch(dirs=(*holders, *parents, *plain), globs=patterns))
    for path in params.conventional_paths:
        for found in transport.glob(path) if path in patterns else [path]:
            candidates.add(found, "conventional location", False)
    return _split_by_existence(transport, candidates)


def _add_configured(context: TargetContext, transport: Transport,
                    candidates: _Candidates) -> None:
    """The data directories the database and PACS servers' configuration names."""
    try:
        for path, how, configured in server_data_directories(context.gather(database_configs)):
            candidates.add(path, how, configured)
    except FactUnavailable as error:
        candidates.unread.append(f"database configuration: {error}")
    try:
        for path, how in orthanc_storage(transport):
            candidates.add(path, how, True)
    except FactUnavailable as error:
        candidates.unread.append(f"Orthanc configuration: {error}")


def _split_by_existence(transport: Transport, candidates: _Candidates) -> DataLocations:
    present, absent, unread = [], [], list(candidates.unread)
    for path, hows in candidates.found.items():
        try:
            exists = path_entry(transport, path) is not None
        except FactUnavailable as error:
            unread.append(f"{path}: {error}")
            continue
        if exists:
            present.append(DataLocation(path, tuple(hows)))
        elif path in candidates.named:
            absent.append(DataLocation(path, tuple(hows)))
    return DataLocations(present, absent, unread)


def path_entry(transport: Transport, path: str) -> DirEntry | None:
    """The entry of its parent's listing that names `path`; None when there is none (a
    parent that cannot be listed is raised: its absence cannot be told)."""
    parent, name = PurePosixPath(path).parent, PurePosixPath(path).name
    try:
        listing = transport.list_dir(str(parent))
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return None
        raise
    return next((entry for entry in listing if entry.name == name), None)


def _is_pattern(path: str) -> bool:
    return any(char in path for char in "*?[")


def _normal(path: str) -> str | None:
    # Only absolute paths: a relative one (Redis `dir ./`) depends on the server's cwd.
    if not path.startswith("/") or _is_pattern(path):
        return None
    return str(PurePosixPath(path))


def server_data_directories(configs: DatabaseConfigs) -> Iterator[tuple[str, str, bool]]:
    """The data directories the database servers' configuration names (True) or implies by
    leaving the setting out (False)."""
    for cluster in configs.postgres:
        if cluster.data_directory is not None:
            yield (cluster.data_directory.value,
                   f"PostgreSQL data_directory ({cluster.data_directory.location})", True)
        else:   # Debian's layout: /etc/postgresql/V/C holds the cluster in /var/lib/postgresql/V/C
            version_cluster = PurePosixPath(cluster.directory).relative_to("/etc/postgresql")
            how = f"PostgreSQL cluster {version_cluster} (no data_directory in {cluster.directory})"
            yield f"/var/lib/postgresql/{version_cluster}", how, False
    if configs.mysql_datadir is not None:
        yield (configs.mysql_datadir.value, f"MySQL datadir ({configs.mysql_datadir.location})",
               True)
    elif configs.mysql_files:
        yield MYSQL_DEFAULT_DATADIR, "MySQL/MariaDB default datadir (none configured)", False
    if configs.redis_dir is not None:
        yield configs.redis_dir.value, f"Redis dir ({configs.redis_dir.location})", True


def orthanc_storage(transport: Transport) -> Iterator[tuple[str, str]]:
    """Orthanc's StorageDirectory and IndexDirectory, from its JSON configuration files."""
    paths = sorted(p for p in dir_files(transport, ORTHANC_CONFIG_DIR) if p.endswith(".json"))
    for path, text in present_texts(transport, paths).items():
        settings = _orthanc_settings(text, path)
        for key in ORTHANC_KEYS:
            value = settings.get(key)
            if isinstance(value, str):
                yield value, f"Orthanc {key} ({path})"


def _orthanc_settings(text: str, path: str) -> dict[str, object]:
    """The top-level settings of an Orthanc configuration file (comments allowed)."""
    plain = _JSON_STRING_OR_COMMENT.sub(lambda match: match.group(1) or "", text)
    try:
        settings = json.loads(plain)
    except ValueError as error:
        raise FactUnavailable(Reason.REFUSED, says("{path}: not JSON ({error})", path=path,
                                                   error=str(error))) from error
    return settings if isinstance(settings, dict) else {}
