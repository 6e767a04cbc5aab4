"""pydantic models of everything mis-audit reads and writes."""
