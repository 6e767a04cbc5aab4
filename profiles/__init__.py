"""The shipped profiles (YAML) and their JSON Schema; read with importlib.resources."""
