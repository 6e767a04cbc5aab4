"""Real servers for the tests: each started from a throwaway config in a temp dir, bound to
its own loopback address, waited for, and stopped by its PID."""
