# Sourced (`. /tmp/index-env.sh`) by the Dockerfile's install steps: the build secrets as the environment
# pip and uv read. Mounted with the secrets and a tmpfs at /run/trust; nothing here outlives the step.
#
# ca_bundle: extra CA certificates (a TLS-intercepting proxy's, a private index's), trusted in addition
#            to the base image's own trust store when it has one, not instead of it.
# index_url: the package index URL, credentials included.
if [ -s /run/secrets/ca_bundle ]; then
  # the base's trust store (Debian/Ubuntu/Alpine, else RHEL/Fedora: a vendor's extend-mode base), then the extra CAs
  {
    for store in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
      if [ -s "$store" ]; then cat "$store"; echo; break; fi
    done
    cat /run/secrets/ca_bundle
  } > /run/trust/ca.pem
  export SSL_CERT_FILE=/run/trust/ca.pem PIP_CERT=/run/trust/ca.pem
fi
if [ -s /run/secrets/index_url ]; then
  UV_DEFAULT_INDEX="$(cat /run/secrets/index_url)"
  export UV_DEFAULT_INDEX PIP_INDEX_URL="$UV_DEFAULT_INDEX"
fi
