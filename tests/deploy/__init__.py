"""What ships: container images (Dockerfile lint, the wheel they install) and deployment files."""
