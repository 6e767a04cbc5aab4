"""Files the leak scanner found: access closed to other users until a person removes or
encrypts them (a playbook cannot decide which records may stay)."""

from __future__ import annotations

from audit.fix import Remedy, Safety, Task, fixer
from audit.model.results import Result

MASK = "*"      # a file name with an identifier in it is shown masked: not a path to change


@fixer("data.personal_data_files")
def personal_data_files(result: Result) -> Remedy:
    """chmod o-rwx on each flagged file whose real path the evidence holds."""
    names = [str(record.get("file", "")) for record in result.evidence.details.get("leaking", [])
             if isinstance(record, dict)]
    paths = [name for name in names if name.startswith("/") and MASK not in name]
    if not paths:
        return Remedy.cannot("the files' paths are not in the evidence (masked or relative)")
    tasks = tuple(Task(f"{path}: no access for other users", "ansible.builtin.file",
                       {"path": path, "mode": "o-rwx"}, Safety.REVIEW,
                       "staff who open the file through a share as another user lose access")
                  for path in paths)
    return Remedy(tasks, partial="access closed to other users; the files still hold "
                  "identifiers: remove them or move them into an encrypted container")
