"""Install pip into a venv created with --without-pip, using only the standard library.

Used where Debian's python3 has no ensurepip: the pip wheel is itself runnable, so it installs itself.
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import urllib.request

PIP_VERSION = "25.3"
INDEX_URL = f"https://pypi.org/pypi/pip/{PIP_VERSION}/json"


def main() -> None:
    with urllib.request.urlopen(INDEX_URL, timeout=60) as reply:
        release = json.load(reply)
    wheel = next(f for f in release["urls"] if f["filename"].endswith(".whl"))
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as reply:  # noqa: S310
            path.write_bytes(reply.read())
        subprocess.run(  # noqa: S603
            [sys.executable, f"{path}/pip", "install", "--quiet", "--no-index", str(path)], check=True
        )


if __name__ == "__main__":
    main()
