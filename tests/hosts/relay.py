#!/usr/bin/python3
"""A TCP relay for tests/hosts: the fakes listen on loopback, which a network
namespace cannot reach, so each app host is given the root side of its own
veth pair instead, and this relays it to the fake (standard library only).

    relay.py ADDR:PORT=TARGET_PORT [...]

Listens on each ADDR:PORT and copies bytes both ways to 127.0.0.1:TARGET_PORT
(loopback only). Prints "ready <first port>" once every address is bound;
stops on SIGTERM.
"""

import asyncio
import ipaddress
import signal
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def handler(target_port):
    async def relay(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
    return relay


def parse(arg):
    listen, target = arg.split("=")
    addr, port = listen.rsplit(":", 1)
    ipaddress.ip_address(addr)
    return addr, int(port), int(target)


async def main(specs):
    servers = [await asyncio.start_server(handler(target), addr, port)
               for addr, port, target in specs]
    print("ready %d" % specs[0][1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        specs = [parse(a) for a in sys.argv[1:]]
    except ValueError as e:
        sys.exit("relay.py: bad argument (%s); want ADDR:PORT=TARGET_PORT" % e)
    asyncio.run(main(specs))
