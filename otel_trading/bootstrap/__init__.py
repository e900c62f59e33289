"""Start-up: the distro and configurator entry points, ``configure()``, providers, resource, exit handling."""
