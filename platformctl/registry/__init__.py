"""The OCI registry side: push every build, tag releases once, promote the same digest.

Pushes go through the container engine (platformctl/engine: layer upload progress, the engine's own
layer reuse); reads and registry-to-registry copies go through skopeo, which copies manifests verbatim so
a digest never changes on the way.
"""
