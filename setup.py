"""Package discovery for treadle's one import root.

The design card keeps services/, executor/ and clients/python/ at the top
level; they install as treadle.services, treadle.executor and treadle.client.
"""

from setuptools import find_packages, setup

ROOTS = {
    "treadle": "treadle",
    "treadle.services": "services",
    "treadle.executor": "executor",
    "treadle.client": "clients/python",
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=packages(), package_dir=ROOTS)
