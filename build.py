#!/usr/bin/env python3
"""Entry point: `python build.py <command>`. All logic lives in the platformctl package."""

import sys

from platformctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
