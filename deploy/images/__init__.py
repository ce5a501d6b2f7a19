"""Building and running the service images without a Docker engine (make images,
make test-images)."""
