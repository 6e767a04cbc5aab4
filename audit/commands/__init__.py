"""Sub-commands that live beside their area; `audit.cli` registers each module listed here."""

COMMAND_MODULES: tuple[str, ...] = (
    "audit.commands.scan",
    "audit.commands.history",
    "audit.commands.profiles",
    "audit.commands.grants",
    "audit.commands.init",
    "audit.commands.schedule",
    "audit.commands.plan",
    "audit.commands.seal",
    "audit.commands.discover",
)
