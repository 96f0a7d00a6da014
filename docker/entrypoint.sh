#!/bin/sh
# Runs `airflow <args>` by default; other commands (bash, python, absolute paths) run as given.
set -e
if [ "$#" -eq 0 ]; then
  set -- --help
fi
case "$1" in
  airflow|bash|sh|python|python3|uv|/*) exec "$@" ;;
  *) exec airflow "$@" ;;
esac
