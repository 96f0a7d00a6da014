"""Building the image: the container engine interface and the build workflow."""
