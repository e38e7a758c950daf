"""Image sources (registry, OCI layout, docker-archive, dir) and the streaming layer walker."""
