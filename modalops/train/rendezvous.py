"""A DDP rendezvous on one machine that listens on loopback only.

torch's env:// rendezvous makes rank 0 host a TCPStore bound to every interface (`::`), whatever
MASTER_ADDR says, and gloo picks its pair sockets from the host name's address. Ranks on one
machine need neither: this process hosts the store on a socket it bound to 127.0.0.1 itself
(TCPStore's `master_listen_fd`), every rank joins as a client (`TORCHELASTIC_USE_AGENT_STORE`,
the same path a torchrun agent's store takes), and gloo/NCCL are told to use the loopback
interface. Multi-node jobs (torchrun) must listen where the other nodes can reach them: their
bind address is the operator's (docs/training.md).
"""

from __future__ import annotations

import contextlib
import datetime
import socket
from collections.abc import Iterator

LOOPBACK = "127.0.0.1"


def loopback_interface() -> str:
    """Name of the loopback network interface (`lo` on Linux), for GLOO/NCCL_SOCKET_IFNAME."""
    for _index, name in socket.if_nameindex():
        if name == "lo" or name.startswith("lo"):
            return name
    raise RuntimeError("no loopback network interface found (socket.if_nameindex())")


@contextlib.contextmanager
def loopback_store(timeout_s: float = 300.0) -> Iterator[dict[str, str]]:
    """Host a TCPStore on 127.0.0.1 for the life of the block; yields the environment the ranks
    need (MASTER_ADDR/PORT, agent-store mode, loopback interface for gloo and NCCL)."""
    import torch.distributed as dist

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    try:
        store = dist.TCPStore(
            LOOPBACK,
            port,
            None,
            True,
            datetime.timedelta(seconds=timeout_s),
            wait_for_workers=False,
            master_listen_fd=sock.fileno(),
        )
    except BaseException:
        sock.close()
        raise
    sock.detach()  # the store owns the descriptor now and closes it when it goes
    iface = loopback_interface()
    yield {
        "MASTER_ADDR": LOOPBACK,
        "MASTER_PORT": str(port),
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "GLOO_SOCKET_IFNAME": iface,
        "NCCL_SOCKET_IFNAME": iface,
    }
    del store
