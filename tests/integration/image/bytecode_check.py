"""Runs inside the image under test (its Python, stdlib only): prints, as JSON, how many modules of the
venv's site-packages have bytecode that Python would use as it is, and which lack it or have stale bytecode.

A module without bytecode is only an error if it compiles: packages ship some files that are not Python 3
(templates, vendored Python 2 code), which installers skip as well.
"""

import importlib.util
import json
import os
import sys
import sysconfig



def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


site = sysconfig.get_paths()["purelib"]
fresh, missing, stale, uncompilable = 0, [], [], 0
for top, dirs, files in os.walk(site):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
        if not name.endswith(".py"):
            continue
        path = os.path.join(top, name)
        cache = importlib.util.cache_from_source(path)
        try:
            with open(cache, "rb") as f:
                header = f.read(16)
        except FileNotFoundError:
            try:
                compile(read(path), path, "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                uncompilable += 1
            else:
                missing.append(os.path.relpath(path, site))
            continue
        flags = int.from_bytes(header[4:8], "little")
        st = os.stat(path)
        if header[:4] != importlib.util.MAGIC_NUMBER:
            ok = False
        elif flags == 0:  # timestamp-based: source mtime and size as the import system checks them
            ok = (int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                  and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF)
        else:  # hash-based
            ok = header[8:16] == importlib.util.source_hash(read(path))
        if ok:
            fresh += 1
        else:
            stale.append(os.path.relpath(path, site))
json.dump({"site": site, "fresh": fresh, "missing": missing, "stale": stale, "uncompilable": uncompilable},
          sys.stdout)
