"""Building the image: its spec, inputs fingerprint, uv tools image, the build and its image checks (the engine is platformctl/engine)."""
