"""mis-audit: security-posture auditor for medical information systems."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mis-audit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
