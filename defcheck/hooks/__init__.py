"""The plugin system: hook specifications, the declarations plugins return, and the manager that collects them."""
