"""`treadle semaphore set|delete|list`: the semaphores templates name in `synchronization`.

A semaphore's name is "<configmap>/<key>", the ConfigMap key an Argo template's
`semaphore.configMapKeyRef` points at; treadle keeps the limit itself.
"""

from __future__ import annotations

import argparse

from treadle.client.inputs import EXIT_OK
from treadle.client.lifecycle import for_each
from treadle.client.remote import client_for


async def set_semaphore(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        await client.set_semaphore(args.name, args.limit)
    print(f"semaphore {args.name} set to {args.limit}")
    return EXIT_OK


async def delete_semaphores(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            await client.delete_semaphore(name)
            print(f"semaphore {name} deleted")
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def list_locks(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        locks = await client.list_locks()
    if args.output == "name":
        for lock in locks:
            if lock.kind == "semaphore":
                print(lock.name.partition("/")[2])
    elif args.output == "json":
        from treadle.client.output_formats import print_json

        print_json([{"name": lock.name, "limit": lock.limit, "holders": list(lock.holders)} for lock in locks])
    elif locks:
        from treadle.client.tables import lock_table

        print("\n".join(lock_table(locks)))
    else:
        print("No semaphores or held mutexes")
    return EXIT_OK
