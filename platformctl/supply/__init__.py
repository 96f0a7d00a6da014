"""Trust in the image (issue 37): SBOM, provenance, signatures, vulnerability audit.

- sbom.py: CycloneDX from the image's installed environment (cyclonedx-py) merged with the locks' hashes
  (cyclonedx-python-lib), written next to the build record.
- provenance.py: an in-toto statement with a SLSA provenance predicate in a DSSE envelope
  (securesystemslib), signed with the image's GPG key.
- attach.py: SBOM and provenance pushed as OCI artifacts attached to the image digest (the `oras` SDK):
  `subject` set (the referrers API lists them where the registry has one) and tagged
  `sha256-<hex>.sbom` / `sha256-<hex>.att` as cosign does.
- signing.py: GPG simple signing of the pushed digest with skopeo (lookaside store), and verification by
  skopeo with a generated policy.json (signedBy): the independent verifier release, promote and deploy use.
- audit.py: pip-audit over every lock, OSV source, strict, with a policy file (audit.yaml).

The commands call these through small functions with typed results; nothing here imports Airflow.
"""
