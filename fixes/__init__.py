"""Built-in fixers: for each check they know, the Ansible tasks that repair a failed result.
`audit.fix` imports the modules listed here."""

FIX_MODULES: tuple[str, ...] = (
    "fixes.sshd",
    "fixes.hostsys",
    "fixes.databases",
    "fixes.data",
)
