"""Probes: the only code that does I/O against targets. Each returns typed facts or raises
`FactUnavailable`; the engine calls each probe once per target and caches the answer.
"""
