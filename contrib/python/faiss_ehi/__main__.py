# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Run an unmodified Faiss script with EHI support:

    python3 -m faiss_ehi script.py [args...]
    python3 -m faiss_ehi -m package.module [args...]

faiss is patched (faiss_ehi.patch_faiss()) before the script starts, so its
faiss.index_factory("EHI64x2,Flat", ...), faiss.write_index,
faiss.read_index, ... handle EHI indexes. Nothing is installed into the
interpreter's start-up (no .pth file, no sitecustomize): only processes
started this way, or with FAISS_EHI_PATCH=1 and an `import faiss_ehi`, are
patched.
"""

import os
import runpy
import sys

import faiss_ehi


def main(argv):
    usage = ("usage: python3 -m faiss_ehi script.py [args...]\n"
             "       python3 -m faiss_ehi -m module [args...]")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    faiss_ehi.patch_faiss()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(usage, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv[:]
        # as `python3 script.py` would: the script's folder comes first
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
