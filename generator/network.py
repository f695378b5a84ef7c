"""NetworkPolicy peers the generator's manifests share (model pods, the watch, the webhook).

A NetworkPolicy matches pods, namespaces and IP blocks, never host names: an S3 endpoint is reached through
the narrowest peer its host name allows.
"""

from __future__ import annotations

import ipaddress

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
# Never reachable for S3 egress, even to "any address": link-local (cloud metadata lives there).
EXCEPT_V4 = ("169.254.0.0/16",)
EXCEPT_V6 = ("fe80::/10",)


def namespace_peer(namespace: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def dns_egress() -> dict:
    """Name resolution (any resolver: cluster DNS or a node-local cache)."""
    return {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def egress_peers(host: str, own_namespace: str) -> list[dict]:
    """The narrowest peers a NetworkPolicy can name for traffic to `host`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}]
    labels = host.split(".")
    if len(labels) == 1:  # a bare Service name resolves in the pod's own namespace
        return [namespace_peer(own_namespace)]
    if len(labels) >= 3 and labels[2] == "svc":  # <service>.<namespace>.svc[.cluster.local]
        return [namespace_peer(labels[1])]
    # Any other host name: NetworkPolicy cannot match names, so any address but link-local (metadata).
    return [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(EXCEPT_V4)}},
        {"ipBlock": {"cidr": "::/0", "except": list(EXCEPT_V6)}},
    ]
